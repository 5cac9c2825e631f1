import { CursorStore } from "./cursor-store.js";
import { cursorStoreContract } from "./cursor-store.contract.js";

cursorStoreContract("DuckDB", (dir, now) => CursorStore.open(dir, now));

import { LocalSpoolStore } from "./spool-store.js";
import { spoolStoreContract } from "./spool-store.contract.js";

spoolStoreContract("local folder", async (place) => new LocalSpoolStore(place));

import { LocalExtentStore } from "./extent-store.js";
import { extentStoreContract } from "./extent-store.contract.js";

extentStoreContract("local folder", async (place) => new LocalExtentStore(place));

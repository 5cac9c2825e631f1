import { CatalogStore } from "./catalog-store.js";
import { catalogStoreContract } from "./catalog-store.contract.js";

catalogStoreContract("DuckDB", (dir) => CatalogStore.open(dir));

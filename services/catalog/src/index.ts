export { createCatalogModule } from "./catalog-module.js";

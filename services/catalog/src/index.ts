export { createCatalogModule } from "./catalog-module.js";
export { catalogAccess } from "./access.js";

export { createSchedulerModule, type SchedulerModuleOptions } from "./scheduler-module.js";

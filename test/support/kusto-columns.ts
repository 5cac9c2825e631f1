/** One column of each Kusto type (SPEC §1), named for short, as the type tests use them. */
export const ONE_COLUMN_PER_TYPE = [
  { name: "b", type: "bool" },
  { name: "i", type: "int" },
  { name: "l", type: "long" },
  { name: "r", type: "real" },
  { name: "d", type: "decimal" },
  { name: "s", type: "string" },
  { name: "dt", type: "datetime" },
  { name: "ts", type: "timespan" },
  { name: "g", type: "guid" },
  { name: "dyn", type: "dynamic" },
];

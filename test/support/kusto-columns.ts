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

/**
 * The Parquet schema an artifact of ONE_COLUMN_PER_TYPE has (name, physical type, converted
 * type): native types; timespans as INT64 ticks; guid and dynamic as strings.
 */
export const PARQUET_SCHEMA_OF_ONE_COLUMN_PER_TYPE = [
  ["b", "BOOLEAN", null],
  ["i", "INT32", "INT_32"],
  ["l", "INT64", "INT_64"],
  ["r", "DOUBLE", null],
  ["d", "FIXED_LEN_BYTE_ARRAY", "DECIMAL"],
  ["s", "BYTE_ARRAY", "UTF8"],
  ["dt", "INT64", "TIMESTAMP_MICROS"],
  ["ts", "INT64", "INT_64"],
  ["g", "BYTE_ARRAY", "UTF8"],
  ["dyn", "BYTE_ARRAY", "UTF8"],
];

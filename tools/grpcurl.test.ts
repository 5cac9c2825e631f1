import { describe, expect, it } from "vitest";
import { jsonMessages } from "./grpcurl.js";

describe("jsonMessages (grpcurl's -d)", () => {
  it("reads one object, or several one after another, whatever their strings hold", () => {
    expect(jsonMessages('{"a":1}')).toEqual([{ a: 1 }]);
    expect(jsonMessages(' {"a":"} {"} \n{"b":"\\"{","c":[1,{"d":2}]}')).toEqual([{ a: "} {" }, { b: '"{', c: [1, { d: 2 }] }]);
  });

  it("names what is wrong with text that is not a run of objects", () => {
    expect(() => jsonMessages('{"a":1} x')).toThrow("expected a JSON object at offset 8, found 'x'");
    expect(() => jsonMessages('{"a":1} "x"')).toThrow("expected a JSON object at offset 8, found '\"'");
    expect(() => jsonMessages("[1]")).toThrow("expected a JSON object at offset 0, found '['");
    expect(() => jsonMessages('{"a":1}\u00a0{"b":2}')).toThrow("expected a JSON object at offset 7");
    expect(() => jsonMessages('{"a":1} {"b":')).toThrow("the last JSON object is not closed");
    expect(() => jsonMessages(" \n ")).toThrow("no JSON object");
    expect(() => jsonMessages('{"a":1}}')).toThrow("expected a JSON object at offset 7, found '}'");
  });
});

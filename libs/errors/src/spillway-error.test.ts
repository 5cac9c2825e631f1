import { describe, expect, it } from "vitest";
import { ErrorCode, isPermanent, isRetryable, SpillwayError } from "./spillway-error.js";

class StorageGone extends SpillwayError {
  constructor() {
    super(ErrorCode.failedPrecondition, "the container is gone");
  }
}

describe("the error taxonomy", () => {
  it("lets the code decide what may be done", () => {
    expect([ErrorCode.unavailable, ErrorCode.resourceExhausted, ErrorCode.aborted].map((c) => isRetryable(new SpillwayError(c, "x")))).toEqual([true, true, true]);
    expect(
      [ErrorCode.invalidArgument, ErrorCode.notFound, ErrorCode.failedPrecondition, ErrorCode.permissionDenied, ErrorCode.unauthenticated, ErrorCode.unimplemented].map((c) =>
        isPermanent(new SpillwayError(c, "x")),
      ),
    ).toEqual([true, true, true, true, true, true]);
    for (const c of [ErrorCode.internal, ErrorCode.cancelled, ErrorCode.deadlineExceeded]) {
      expect([isRetryable(new SpillwayError(c, "x")), isPermanent(new SpillwayError(c, "x"))]).toEqual([false, false]);
    }
  });

  it("names errors after their class and keeps their cause", () => {
    const cause = new Error("403 from storage");
    const err = new SpillwayError(ErrorCode.permissionDenied, "storage access denied", { cause });
    expect(err.cause).toBe(cause);
    expect(new StorageGone().name).toBe("StorageGone");
    expect(new StorageGone().permanent).toBe(true);
  });

  it("turns anything into a SpillwayError: itself, or INTERNAL with the original as cause", () => {
    const domain = new StorageGone();
    expect(SpillwayError.from(domain)).toBe(domain);
    const bug = new TypeError("x is undefined");
    expect(SpillwayError.from(bug)).toMatchObject({ code: ErrorCode.internal, message: "x is undefined", cause: bug });
    expect(isPermanent(bug)).toBe(false);
    expect(isRetryable("a string")).toBe(false);
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe } from "vitest";
import { useAzurite, type Azurite } from "../../../test/support/azurite.js";
import { parseConnectionString } from "./connection-string.js";
import { storageTargetContract } from "./storage-target.contract.js";
import { openStorageTarget } from "./storage-target.js";

describe("local folder", () => {
  const folders: string[] = [];
  afterAll(() => Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))));
  storageTargetContract("local folder", async () => {
    const folder = await mkdtemp(join(tmpdir(), "spillway-target-"));
    folders.push(folder);
    return openStorageTarget({ kind: "folder", path: join(folder, "lake") });
  }, false);
});

describe("Azure Blob (Azurite)", () => {
  let azurite: Azurite;
  beforeAll(async () => {
    azurite = await useAzurite();
  });
  afterAll(() => azurite?.stop());
  let n = 0;
  storageTargetContract("Azure Blob", async () => openStorageTarget(parseConnectionString(azurite.connectionString(`targets-${Date.now().toString(36)}-${n++}/lake`))), true);
});

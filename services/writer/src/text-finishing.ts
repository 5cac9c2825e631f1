import { createReadStream, createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

export interface TextFinish {
  /** Prepend the UTF-8 byte-order mark (encoding UTF8BOM). */
  bom: boolean;
  /** Drop the header line DuckDB wrote (includeHeaders firstFile, on every file but the first). */
  dropHeader: boolean;
  gzip: boolean;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Streams a text artifact DuckDB wrote into its final bytes: bytes only, no rows in JavaScript. */
export async function finishTextFile(raw: string, out: string, finish: TextFinish): Promise<void> {
  let first = true;
  let dropping = finish.dropHeader;
  const edit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      let data = chunk;
      if (dropping) {
        const nl = data.indexOf(0x0a);
        if (nl < 0) return done();
        data = data.subarray(nl + 1);
        dropping = false;
      }
      if (first) {
        first = false;
        if (finish.bom) data = Buffer.concat([BOM, data]);
      }
      done(null, data);
    },
    flush(done) {
      // An empty body still carries its BOM.
      if (first && finish.bom) this.push(BOM);
      done();
    },
  });
  const stages: NodeJS.ReadWriteStream[] = [edit];
  if (finish.gzip) stages.push(createGzip());
  await pipeline(createReadStream(raw), ...(stages as [Transform]), createWriteStream(out));
}

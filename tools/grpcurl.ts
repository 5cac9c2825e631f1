// A grpcurl stand-in for machines without grpcurl: the same arguments for the common case,
//   tsx tools/grpcurl.ts -plaintext [-H 'name: value']... [-d '<json>'] <host:port> <package.Service>/<Method>
//   tsx tools/grpcurl.ts [-cacert ca.pem] [-cert c.pem -key k.pem] ... (TLS, without -plaintext)
//   tsx tools/grpcurl.ts -plaintext <host:port> list
// It learns every type from the server's reflection service; it reads no proto files.
import { readFileSync } from "node:fs";
import { Client, credentials, Metadata, type ChannelCredentials } from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescService, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema, type ServerReflectionResponse } from "@spillway/proto";

/** How grpcurl dials: plaintext, or TLS with an optional CA and client certificate; and the -H headers. */
export interface GrpcurlOptions {
  headers?: string[];
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

function channelCredentials(options: GrpcurlOptions): ChannelCredentials {
  const { tls } = options;
  if (!tls) return credentials.createInsecure();
  const read = (f?: string) => (f ? readFileSync(f) : null);
  return credentials.createSsl(read(tls.caFile), read(tls.keyFile), read(tls.certFile));
}

function metadataOf(options: GrpcurlOptions): Metadata {
  const metadata = new Metadata();
  for (const header of options.headers ?? []) {
    const at = header.indexOf(":");
    if (at < 1) throw new Error(`-H '${header}' is not 'name: value'`);
    metadata.add(header.slice(0, at).trim().toLowerCase(), header.slice(at + 1).trim());
  }
  return metadata;
}

async function reflect(client: Client, request: Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1]): Promise<ServerReflectionResponse> {
  const stream = client.makeBidiStreamRequest(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    (m: ReturnType<typeof create<typeof ServerReflectionRequestSchema>>) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
    (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    new Metadata(),
  );
  stream.write(create(ServerReflectionRequestSchema, request));
  stream.end();
  for await (const response of stream) {
    const r = response as ServerReflectionResponse;
    if (r.messageResponse.case === "errorResponse") throw new Error(r.messageResponse.value.errorMessage);
    return r;
  }
  throw new Error("the server sent no reflection response");
}

export async function listServices(address: string, options: GrpcurlOptions = {}): Promise<string[]> {
  const client = new Client(address, channelCredentials(options));
  try {
    const r = await reflect(client, { messageRequest: { case: "listServices", value: "" } });
    return r.messageResponse.case === "listServicesResponse" ? r.messageResponse.value.service.map((s) => s.name) : [];
  } finally {
    client.close();
  }
}

/** The descriptors of the file defining `symbol` and of every file it imports, as grpcurl gathers them. */
async function registryFor(client: Client, symbol: string): Promise<Registry> {
  const files = new Map<string, ReturnType<typeof fromBinary<typeof FileDescriptorProtoSchema>>>();
  const add = (r: ServerReflectionResponse) => {
    if (r.messageResponse.case !== "fileDescriptorResponse") throw new Error(`no descriptor for ${symbol}`);
    for (const bytes of r.messageResponse.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      files.set(file.name, file);
    }
  };
  add(await reflect(client, { messageRequest: { case: "fileContainingSymbol", value: symbol } }));
  for (let missing = missingImports(files); missing.length; missing = missingImports(files)) {
    for (const name of missing) add(await reflect(client, { messageRequest: { case: "fileByFilename", value: name } }));
  }
  // Imports before importers: the registry resolves each file against those before it.
  const ordered: Array<ReturnType<typeof fromBinary<typeof FileDescriptorProtoSchema>>> = [];
  const visit = (name: string) => {
    const file = files.get(name);
    if (!file || ordered.includes(file)) return;
    file.dependency.forEach(visit);
    ordered.push(file);
  };
  [...files.keys()].forEach(visit);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
}

function missingImports(files: Map<string, { dependency: string[] }>): string[] {
  return [...new Set([...files.values()].flatMap((f) => f.dependency))].filter((d) => !files.has(d));
}

/**
 * The messages in -d, as grpcurl reads them: JSON objects one after another (for a client
 * stream, one per message), separated by JSON whitespace or nothing.
 */
export function jsonMessages(text: string): JsonValue[] {
  const out: JsonValue[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (depth === 0) {
      if (ch === "{") {
        depth = 1;
        start = i;
      } else if (!" \t\n\r".includes(ch)) {
        throw new Error(`-d: expected a JSON object at offset ${i}, found '${ch}'`);
      }
    } else if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = true;
    } else if (ch === "{" || ch === "[") {
      depth++;
    } else if ((ch === "}" || ch === "]") && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)) as JsonValue);
    }
  }
  if (depth !== 0) throw new Error("-d: the last JSON object is not closed");
  if (out.length === 0) throw new Error("-d: no JSON object");
  return out;
}

/** One call, as grpcurl makes it: JSON in, one JSON object per response message out. */
export async function grpcurl(address: string, fullMethod: string, json: string, options: GrpcurlOptions = {}): Promise<JsonValue[]> {
  const [serviceName, methodName] = fullMethod.replace(/^\//, "").split("/") as [string, string];
  const client = new Client(address, channelCredentials(options));
  const metadata = metadataOf(options);
  try {
    const registry = await registryFor(client, serviceName);
    const service = registry.getService(serviceName) as DescService | undefined;
    const method = service?.methods.find((m) => m.name === methodName);
    if (!method) throw new Error(`${serviceName}/${methodName} is not served at ${address}`);
    const requests = jsonMessages(json || "{}").map((m) => fromJson(method.input, m, { registry }));
    if (method.methodKind !== "client_streaming" && requests.length > 1) {
      throw new Error(`${serviceName}/${methodName} takes one request message, -d has ${requests.length}`);
    }
    const request = requests[0]!;
    const serialize = (m: typeof request) => Buffer.from(toBinary(method.input, m));
    const deserialize = (b: Buffer) => toJson(method.output, fromBinary(method.output, b), { registry });
    const path = `/${serviceName}/${methodName}`;
    if (method.methodKind === "server_streaming") {
      const out: JsonValue[] = [];
      for await (const m of client.makeServerStreamRequest(path, serialize, deserialize, request, metadata)) out.push(m as JsonValue);
      return out;
    }
    if (method.methodKind === "client_streaming") {
      return [
        await new Promise<JsonValue>((resolve, reject) => {
          const call = client.makeClientStreamRequest(path, serialize, deserialize, metadata, (err, value) => (err ? reject(err) : resolve(value as JsonValue)));
          requests.forEach((r) => call.write(r));
          call.end();
        }),
      ];
    }
    return [
      await new Promise<JsonValue>((resolve, reject) =>
        client.makeUnaryRequest(path, serialize, deserialize, request, metadata, (err, value) => (err ? reject(err) : resolve(value as JsonValue))),
      ),
    ];
  } finally {
    client.close();
  }
}

/** grpcurl's arguments: -plaintext, -H (repeatable), -d, -cacert, -cert, -key, then address and method (or list). */
export function parseGrpcurlArgs(args: string[]): { options: GrpcurlOptions; data: string; positional: string[] } {
  let data = "";
  let plaintext = false;
  const headers: string[] = [];
  const tls: NonNullable<GrpcurlOptions["tls"]> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-d") data = args[++i] ?? "";
    else if (a === "-H") headers.push(args[++i] ?? "");
    else if (a === "-cacert") tls.caFile = args[++i];
    else if (a === "-cert") tls.certFile = args[++i];
    else if (a === "-key") tls.keyFile = args[++i];
    else if (a === "-plaintext") plaintext = true;
    else positional.push(a);
  }
  return { options: { headers, tls: plaintext ? undefined : tls }, data, positional };
}

async function cli(args: string[]): Promise<void> {
  const { options, data, positional } = parseGrpcurlArgs(args);
  const [address, target] = positional;
  if (!address || !target) {
    console.error("usage: grpcurl.ts [-plaintext | -cacert ca.pem [-cert c.pem -key k.pem]] [-H 'name: value'] [-d '<json>'] <host:port> <package.Service>/<Method> | list");
    process.exit(2);
  }
  if (target === "list") {
    (await listServices(address, options)).forEach((s) => console.log(s));
    return;
  }
  for (const message of await grpcurl(address, target, data, options)) console.log(JSON.stringify(message, null, 2));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  cli(process.argv.slice(2)).catch((err: { code?: number; details?: string; message: string }) => {
    console.error(err.code !== undefined ? `ERROR:\n  Code: ${err.code}\n  Message: ${err.details ?? err.message}` : err.message);
    process.exit(1);
  });
}

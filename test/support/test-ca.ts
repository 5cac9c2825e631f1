import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, join } from "node:path";

/**
 * Certificate authorities and certificates for TLS tests, issued with the `openssl` CLI
 * (Node's crypto makes keys but cannot sign X.509 certificates). EC P-256 keys keep a
 * whole suite's worth of issuing well under a second.
 */

export interface TestCa {
  name: string;
  certPath: string;
  keyPath: string;
  /** PEM, what a client or server trusts. */
  cert: Buffer;
}

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
  /** PEM. */
  cert: Buffer;
  /** PEM (PKCS#8). */
  key: Buffer;
}

export interface IssueOptions {
  /** Hostnames and IP addresses the certificate serves (subjectAltName); any makes it a server certificate. */
  serverNames?: string[];
  /** May authenticate a client (mutual TLS). */
  clientAuth?: boolean;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function openssl(args: string[]): void {
  // stdio piped: openssl chats on stderr, and a failure's message belongs in the thrown error.
  execFileSync("openssl", args, { stdio: "pipe" });
}

const fileName = (name: string) => name.replace(/[^A-Za-z0-9.-]+/g, "-").toLowerCase();

/**
 * A self-signed CA in `dir`. Several may share a folder: files are named after `name`,
 * so an unrelated CA for negative tests is `makeTestCa(dir, "Other CA")`.
 */
export function makeTestCa(dir: string, name = "Spillway Test CA"): TestCa {
  const base = join(dir, fileName(name));
  const certPath = `${base}.crt`;
  const keyPath = `${base}.key`;
  openssl([
    "req", "-x509", ...EC_KEY, "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", `/CN=${name}`,
    // Node (OpenSSL) refuses to chain to an issuer that is not marked as a CA.
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-addext", "subjectKeyIdentifier=hash",
  ]);
  return { name, certPath, keyPath, cert: readFileSync(certPath) };
}

/** A leaf certificate for `name`, signed by `ca`, its key and PEM written next to the CA's. */
export function issueCertificate(ca: TestCa, name: string, options: IssueOptions = {}): IssuedCertificate {
  const serverNames = options.serverNames ?? [];
  const usages = [...(serverNames.length ? ["serverAuth"] : []), ...(options.clientAuth ? ["clientAuth"] : [])];
  if (!usages.length) throw new Error(`certificate '${name}' would serve nothing: give serverNames, clientAuth or both`);
  const base = join(dirname(ca.certPath), `${fileName(ca.name)}--${fileName(name)}`);
  const [certPath, keyPath, csrPath, extPath] = [".crt", ".key", ".csr", ".ext"].map((ext) => base + ext) as [string, string, string, string];
  // Hostname checks (grpc-js, Node's tls) look only at subjectAltName, never at the CN.
  const altNames = serverNames.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`));
  writeFileSync(
    extPath,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${usages.join(",")}`,
      "authorityKeyIdentifier=keyid",
      ...(altNames.length ? [`subjectAltName=${altNames.join(",")}`] : []),
    ].join("\n") + "\n",
  );
  openssl(["req", "-new", ...EC_KEY, "-keyout", keyPath, "-out", csrPath, "-subj", `/CN=${name}`]);
  openssl([
    "x509", "-req", "-in", csrPath, "-CA", ca.certPath, "-CAkey", ca.keyPath, "-out", certPath, "-days", "2", "-extfile", extPath,
    // A random serial instead of a .srl file beside the CA: no state shared between issues.
    "-set_serial", `0x${randomBytes(16).toString("hex").replace(/^[89a-f]/, "1")}`,
  ]);
  return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
}

// Module boundaries (STYLE §4, §7): libs import no service; a service imports libs and
// its own files only; the app (module registry) reaches a service only through its
// index.ts, and a service's main.ts starts the registry through the app's index.ts. Tests and tools may import what they exercise.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(new URL("..", import.meta.url).pathname);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules" || name === "gen") return [];
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const problems: string[] = [];
for (const file of [...files(join(root, "libs")), ...files(join(root, "services"))]) {
  const rel = relative(root, file);
  const [area, pkg] = rel.split("/") as [string, string];
  const isTest = rel.endsWith(".test.ts");
  for (const m of readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']/gm)) {
    const spec = m[1]!;
    if (!spec.startsWith(".")) continue;
    const target = relative(root, resolve(dirname(file), spec));
    const [tArea, tPkg] = target.split("/");
    const crosses = tArea !== area || tPkg !== pkg;
    if (!crosses) continue;
    if (area === "services" && pkg === "app" && tArea === "services" && target.endsWith("/src/index.js")) continue;
    // A service's standalone entry is the registry with its --target.
    if (rel.endsWith("/src/main.ts") && target === "services/app/src/index.js") continue;
    if (isTest && tArea === "test") continue;
    // A test may drive another service through its public index, as the app does (a real peer, not a fake).
    if (isTest && tArea === "services" && target.endsWith("/src/index.js")) continue;
    problems.push(`${rel}: imports ${spec} (another package's internals; use @spillway/* or the service's index)`);
  }
  if (area === "libs") {
    for (const m of readFileSync(file, "utf8").matchAll(/from\s+["'](?:\.\.\/)+services\//g)) problems.push(`${rel}: a lib imports a service (${m[0]})`);
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("module boundaries: ok");

// aws-jwt-verify's side of bench_reference_node.py: times verification rounds on request, over stdin/stdout.
//
// First line in: {"issuer", "audience", "scope": [...], "jwks": {...}, "tokens": [...]}. The verifier is built
// (JwtRsaVerifier with cacheJwks, so no network), every token is verified once (all must be valid), V8 is warmed
// up (at least WARM_UP_VERIFICATIONS of each call), then "ready" is written. After that each line in is "sync"
// (verifySync over all tokens) or "async" (await verify over all tokens); the answer is the CPU seconds (user +
// system, process.cpuUsage: every thread of the process, V8's helpers included) that round took, as JSON.
// aws-jwt-verify is resolved from sandbox/node_modules (the project's one package.json for Node).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../sandbox/package.json", import.meta.url));
const { JwtRsaVerifier } = require("aws-jwt-verify");

const WARM_UP_VERIFICATIONS = 6000;

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();

async function nextLine() {
  const { value, done } = await lines.next();
  if (done) return null;
  return value;
}

const setup = JSON.parse(await nextLine());
const verifier = JwtRsaVerifier.create({ issuer: setup.issuer, audience: setup.audience, scope: setup.scope });
verifier.cacheJwks(setup.jwks);
const tokens = setup.tokens;
for (const token of tokens) {
  verifier.verifySync(token); // throws on any invalid token: a benchmark of failures would measure nothing useful
}
// V8 compiles hot code in tiers; without this a short (--quick) run would time the interpreter, not aws-jwt-verify.
for (let done = 0; done < WARM_UP_VERIFICATIONS; done += tokens.length) {
  for (const token of tokens) verifier.verifySync(token);
  for (const token of tokens) await verifier.verify(token);
}
process.stdout.write("ready\n");

for (let command = await nextLine(); command !== null; command = await nextLine()) {
  const start = process.cpuUsage();
  if (command === "sync") {
    for (const token of tokens) verifier.verifySync(token);
  } else if (command === "async") {
    for (const token of tokens) await verifier.verify(token);
  } else {
    process.stderr.write(`unknown command ${JSON.stringify(command)}: use "sync" or "async"\n`);
    process.exit(2);
  }
  const used = process.cpuUsage(start);
  const seconds = (used.user + used.system) / 1e6;
  process.stdout.write(JSON.stringify(seconds) + "\n");
}

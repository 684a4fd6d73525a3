// The reference verifier for differential tests: aws-jwt-verify behind a JSON-lines protocol on stdin/stdout.
//
// One request a line: {"id": any, "verifier": SPEC, "token": "..."}; one answer a line, in order:
//   {"id": ..., "valid": true, "payload": {...}}  or  {"id": ..., "valid": false, "error": "JwtExpiredError", "message": "..."}
// A batch is one line too: {"id": any, "verifiers": {NAME: SPEC, ...}, "batch": [{"verifier": NAME, "token": "..."}, ...]}
// answered by {"id": ..., "answers": [...]} in the batch's order, each answer as above except that an accepted
// payload comes as JSON text ("payload_json"): a payload may nest deeper than the caller's JSON parser allows, so the
// caller parses only the payloads it compares.
// SPEC (verifiers are built once per distinct SPEC and reused):
//   {"kind": "jwt", "issuer": "...", "audience": "..." | [...], "jwks": {...}, "graceSeconds": 60, "scope"?: [...]}
//   {"kind": "cognito", "userPoolId": "...", "clientId": "...", "tokenUse": "access" | "id" | null,
//    "graceSeconds": 60, "scope"?: [...], "groups"?: [...],
//    "jwks": {...}  (loaded with cacheJwks)  or  "jwksUrl": "http://127.0.0.1:PORT/..." (loaded with hydrate(),
//    through a fetcher that sends the pool's https JWKS URI to that loopback URL: the test's Cognito emulator)}
// Keys are always in the cache before a token is verified, so verifySync is used: nothing here touches the network
// except an explicit loopback jwksUrl.
// aws-jwt-verify is resolved from sandbox/node_modules (the project's one package.json for Node).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../sandbox/package.json", import.meta.url));
const { JwtRsaVerifier, CognitoJwtVerifier } = require("aws-jwt-verify");
const { SimpleJwksCache } = require("aws-jwt-verify/jwk");

const verifiers = new Map();

class LoopbackFetcher {
  constructor(url) {
    this.url = url;
  }

  async fetch(uri) {
    const response = await fetch(this.url, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) {
      throw new Error(`JWKS fetch for ${uri} from ${this.url} answered HTTP ${response.status}`);
    }
    return response.arrayBuffer();
  }
}

async function buildVerifier(spec) {
  const common = {};
  for (const name of ["graceSeconds", "scope"]) {
    if (spec[name] !== undefined) common[name] = spec[name];
  }
  let verifier;
  if (spec.kind === "jwt") {
    verifier = JwtRsaVerifier.create({ issuer: spec.issuer, audience: spec.audience, ...common });
  } else if (spec.kind === "cognito") {
    const props = { userPoolId: spec.userPoolId, clientId: spec.clientId, tokenUse: spec.tokenUse, ...common };
    if (spec.groups !== undefined) props.groups = spec.groups;
    const extra = spec.jwksUrl ? { jwksCache: new SimpleJwksCache({ fetcher: new LoopbackFetcher(spec.jwksUrl) }) } : {};
    verifier = CognitoJwtVerifier.create(props, extra);
  } else {
    throw new Error(`unknown verifier kind ${JSON.stringify(spec.kind)}: use "jwt" or "cognito"`);
  }
  if (spec.jwksUrl) {
    await verifier.hydrate();
  } else {
    verifier.cacheJwks(spec.jwks);
  }
  return verifier;
}

async function verifierFor(spec) {
  const key = JSON.stringify(spec);
  if (!verifiers.has(key)) {
    verifiers.set(key, await buildVerifier(spec));
  }
  return verifiers.get(key);
}

async function answer(request) {
  try {
    const verifier = await verifierFor(request.verifier);
    const payload = verifier.verifySync(request.token);
    return { id: request.id, valid: true, payload };
  } catch (err) {
    return { id: request.id, valid: false, error: err?.constructor?.name ?? "Error", message: String(err?.message ?? err) };
  }
}

async function answerBatch(request) {
  const answers = [];
  for (const item of request.batch) {
    const spec = request.verifiers[item.verifier];
    if (spec === undefined) {
      throw new Error(`batch item names verifier ${JSON.stringify(item.verifier)}, which the batch does not define`);
    }
    const verdict = await answer({ verifier: spec, token: item.token });
    answers.push(verdict.valid ? { valid: true, payload_json: JSON.stringify(verdict.payload) }
      : { valid: false, error: verdict.error, message: verdict.message });
  }
  return { id: request.id, answers };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    process.stdout.write(JSON.stringify({ id: null, valid: false, error: "ProtocolError", message: `not JSON: ${err.message}` }) + "\n");
    continue;
  }
  let reply;
  try {
    reply = request.batch === undefined ? await answer(request) : await answerBatch(request);
  } catch (err) {
    reply = { id: request.id ?? null, valid: false, error: "ProtocolError", message: String(err?.message ?? err) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}

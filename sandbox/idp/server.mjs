// The sandbox's OpenID provider: npm oidc-provider on a loopback port, configured from a JSON file the Python
// launcher writes from the auth policy (clients, resource servers, demo users).
//
// Usage: node server.mjs CONFIG.json
// Env:   AUTHGATE_IDP_ADMIN_TOKEN  shared secret for the /__sandbox admin endpoints (required)
// On readiness it prints one JSON line: {"event":"ready","issuer":"http://127.0.0.1:PORT", ...}.
//
// Certificate-bound access tokens (RFC 8705): with `tls: {cert_file, key_file}` in the config, a second listener on
// 127.0.0.1 speaks TLS and asks every client for a certificate; the ready line gains "tls_origin". A client whose
// metadata sets `certificate_bound: true` must call the token endpoint there, with its certificate, and gets an
// access token whose cnf["x5t#S256"] is that certificate's thumbprint. The certificate is not checked against a
// CA (the binding is to this certificate, whoever issued it), as RFC 8705 section 3 allows.
//
// Key rotation: POST /__sandbox/rotate-key builds a fresh provider instance that signs with the key it has been
// publishing as "next" since the previous rotation, publishes a new next key, and keeps every earlier key in the
// JWKS: pre-publication, which is how a real issuer rotates without refusing a single token. Sessions, grants and tokens
// survive because oidc-provider's in-memory adapter keeps its storage at module level, shared by every instance.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const ADMIN_PREFIX = '/__sandbox/';

function fail(message) {
  process.stderr.write(`authgate idp: ${message}\n`);
  process.exit(2);
}

const configPath = process.argv[2];
if (!configPath) fail('usage: node server.mjs CONFIG.json');
const adminToken = process.env.AUTHGATE_IDP_ADMIN_TOKEN;
if (!adminToken || adminToken.length < 16) fail('AUTHGATE_IDP_ADMIN_TOKEN must be set to a secret of 16+ characters');

let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read config ${configPath}: ${err.message}`);
}

const resources = new Map((config.resources || []).map((r) => [r.indicator, r]));
const users = config.users || {};
const resourceScopes = [...new Set((config.resources || []).flatMap((r) => r.scopes || []))];
const clientClaims = new Map((config.clients || []).map((c) => [c.client_id, c.token_claims || {}]));
const defaultTTL = config.access_token_ttl || 300;
// Cookie signing keys must outlive a rotation, or a login in progress would break when the provider is rebuilt.
const cookieKeys = [randomBytes(32).toString('base64url')];

let keyCounter = 0;
function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keyCounter += 1;
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `sandbox-${keyCounter}-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

// OpenID Back-Channel Logout: the provider POSTs a logout token there when a session of the client ends.
function backchannel(c) {
  return c.backchannel_logout_uri
    ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true }
    : {};
}

function clientMetadata(c) {
  if (c.kind === 'spa' || c.kind === 'web') {
    // Code + PKCE with refresh. A spa is public; a web client is authgate's token handler, a confidential client.
    return {
      client_id: c.client_id,
      ...(c.kind === 'web'
        ? { client_secret: c.client_secret, token_endpoint_auth_method: 'client_secret_basic' }
        : { token_endpoint_auth_method: 'none' }),
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris || [],
      scope: ['openid', 'profile', 'email', 'offline_access', ...(c.scopes || [])].join(' '),
      ...backchannel(c),
    };
  }
  if (c.kind === 'service') {
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: (c.scopes || []).join(' '),
      ...(c.certificate_bound ? { tls_client_certificate_bound_access_tokens: true } : {}),
    };
  }
  throw new Error(`client ${c.client_id}: kind must be "spa", "web" or "service", got ${JSON.stringify(c.kind)}`);
}

// A resource may ask for opaque access tokens (access_token_format: "opaque"): the ones only introspection can
// read, which is also the only kind oidc-provider introspects.
function resourceServerInfo(resource) {
  const opaque = resource.access_token_format === 'opaque';
  return {
    audience: resource.audience,
    scope: (resource.scopes || []).join(' '),
    accessTokenTTL: resource.access_token_ttl || defaultTTL,
    accessTokenFormat: opaque ? 'opaque' : 'jwt',
    ...(opaque ? {} : { jwt: { sign: { alg: 'RS256' } } }),
  };
}

function buildProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: (config.clients || []).map(clientMetadata),
    jwks: { keys },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...resourceScopes],
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    // Every refresh hands out a new refresh token and consumes the old one; presenting a consumed one again
    // revokes the whole grant (oidc-provider's reuse detection), as Cognito and Okta do with rotation on.
    rotateRefreshToken: true,
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      // Confidential clients may introspect (RFC 7662) and revoke (RFC 7009); the authorizers' freshness checks
      // and the denylist are exercised against exactly these.
      introspection: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      // DPoP-bound access tokens (cnf.jkt) for any client that sends a DPoP proof to the token endpoint.
      dPoP: { enabled: true },
      ...(config.tls ? { mTLS: { enabled: true, certificateBoundAccessTokens: true, getCertificate: peerCertificate } }
        : {}),
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A login without a resource parameter gets the first configured API, like a default audience.
        defaultResource: (ctx, client, oneOf) => (oneOf ? oneOf[0] : (config.resources || [])[0]?.indicator),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          const resource = resources.get(indicator);
          if (!resource) throw new Provider.errors.InvalidTarget(`unknown resource indicator ${indicator}`);
          return resourceServerInfo(resource);
        },
      },
    },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || defaultTTL,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || defaultTTL,
      IdToken: 300,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
      AuthorizationCode: 60,
    },
    findAccount: async (ctx, sub) => {
      const user = users[sub];
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, ...(user.id_token_claims || {}) }),
      };
    },
    // Roles, groups and tenant travel in the access token, where the gateways and the guard read them.
    // The session id travels too, so a back-channel logout of the session can refuse its access tokens.
    extraTokenClaims: async (ctx, token) => {
      if (token.accountId) {
        const claims = users[token.accountId]?.token_claims;
        return token.sid ? { ...(claims || {}), sid: token.sid } : claims || undefined;
      }
      return clientClaims.get(token.clientId) || undefined;
    },
    // oidc-provider refuses to fetch special-use addresses (SSRF protection), loopback included; the sandbox's
    // back-channel logout receiver is on loopback, and the sandbox must never reach anything else.
    fetch: async (url, options) => {
      const { hostname } = new URL(url);
      if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
        throw new Error(`the sandbox provider fetches loopback URLs only, not ${hostname}`);
      }
      const { dispatcher, ...rest } = options;
      return fetch(url, rest);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`authgate idp: server error: ${err.stack}\n`));
  provider.on('backchannel.error', (ctx, err, client) => process.stderr.write(
    `authgate idp: back-channel logout to ${client.clientId} failed: ${err.message}\n`));
  return provider;
}

// The TLS client certificate of the request's connection, as PEM; undefined on the plain listener or without one.
function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  if (!peer || !peer.raw) return undefined;
  const body = peer.raw.toString('base64').match(/.{1,64}/g).join('\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function adminAuthorized(req) {
  const given = Buffer.from(String(req.headers['x-authgate-admin'] || ''));
  const expected = Buffer.from(adminToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 65536) reject(new Error('request body too large'));
    });
    req.on('end', () => {
      try {
        resolve(body ? JSON.parse(body) : {});
      } catch (err) {
        reject(new Error(`body is not JSON: ${err.message}`));
      }
    });
  });
}

function sendJson(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

// The signing key first, then the next key, published ahead of its use (see rotate-key).
const keys = [newSigningKey(), newSigningKey()];
let provider;
let handler;
let issuer;

// An access token exactly as this provider would have issued it `age_seconds` ago, already expired now: the demo
// needs a genuinely expired, genuinely signed token without waiting out its lifetime plus the verifier's leeway.
async function issueExpiredToken({ client_id: clientId, resource: indicator, scope = '', age_seconds: age = 3600 }) {
  const client = await provider.Client.find(String(clientId));
  if (!client) throw new Error(`unknown client ${clientId}`);
  const resource = resources.get(indicator);
  if (!resource) throw new Error(`unknown resource indicator ${indicator}`);
  const info = resourceServerInfo(resource);
  const now = Math.floor(Date.now() / 1000);
  const iat = now - Number(age);
  const ttl = Math.min(info.accessTokenTTL, Math.max(1, Number(age) - 1));
  const token = new provider.ClientCredentials({
    client,
    resourceServer: new provider.ResourceServer(indicator, info),
    scope: String(scope),
    iat,
    exp: iat + ttl,
    extra: clientClaims.get(client.clientId) || undefined,
  });
  return { access_token: await token.save(), expires_at: iat + ttl };
}

async function handleAdmin(req, res) {
  if (!adminAuthorized(req)) return sendJson(res, 403, { error: 'x-authgate-admin header missing or wrong' });
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'admin endpoints take POST' });
  const path = req.url.slice(ADMIN_PREFIX.length).split('?')[0];
  try {
    if (path === 'rotate-key') {
      // keys = [signing, next, ...retired]: the next key has been published since the last rotation, so every
      // verifier's cached key set already holds it when it starts signing; a new next key takes its place.
      const [previous, next, ...retired] = keys;
      keys.splice(0, keys.length, next, newSigningKey(), previous, ...retired);
      provider = buildProvider(issuer, keys);
      handler = provider.callback();
      return sendJson(res, 200, {
        signing_kid: keys[0].kid, next_kid: keys[1].kid, published_kids: keys.map((k) => k.kid),
      });
    }
    if (path === 'expired-token') return sendJson(res, 200, await issueExpiredToken(await readJson(req)));
    return sendJson(res, 404, { error: `no admin endpoint ${path}; have rotate-key, expired-token` });
  } catch (err) {
    return sendJson(res, 400, { error: err.message });
  }
}

// oidc-provider's development login page accepts any password. The sandbox checks it against its configured users
// before the provider sees the form, so a wrong password fails the way it would at a real issuer.
const INTERACTION_SUBMIT = /^\/interaction\/[^/?]+\/?(\?.*)?$/;

function readRawBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 65536) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function checkLoginThenHandle(req, res) {
  let raw;
  try {
    raw = await readRawBody(req);
  } catch (err) {
    res.writeHead(413, { 'content-type': 'text/plain' });
    res.end(err.message);
    return;
  }
  const form = new URLSearchParams(raw);
  if (form.get('prompt') === 'login') {
    const user = users[form.get('login') || ''];
    const given = Buffer.from(form.get('password') || '');
    const expected = Buffer.from(user?.password || '');
    if (!user || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><title>Sign-in failed</title><p>Wrong username or password.</p>');
      return;
    }
  }
  // The stream is consumed; oidc-provider falls back to req.body for an already-read form.
  req.body = raw;
  handler(req, res);
}

function route(req, res) {
  if (req.url.startsWith(ADMIN_PREFIX)) {
    handleAdmin(req, res);
    return;
  }
  if (req.method === 'POST' && INTERACTION_SUBMIT.test(req.url)) {
    checkLoginThenHandle(req, res);
    return;
  }
  handler(req, res);
}

const server = createServer(route);
let tlsServer;
if (config.tls) {
  try {
    tlsServer = createTlsServer({
      cert: readFileSync(config.tls.cert_file), key: readFileSync(config.tls.key_file),
      requestCert: true, rejectUnauthorized: false,
    }, route);
  } catch (err) {
    fail(`cannot read the TLS listener's certificate or key: ${err.message}`);
  }
}

function ready(extra) {
  process.stdout.write(`${JSON.stringify({ event: 'ready', issuer, signing_kid: keys[0].kid, ...extra })}\n`);
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  try {
    provider = buildProvider(issuer, keys);
    handler = provider.callback();
  } catch (err) {
    fail(`bad provider configuration: ${err.message}`);
  }
  if (!tlsServer) {
    ready({});
    return;
  }
  tlsServer.listen(0, '127.0.0.1', () => ready({ tls_origin: `https://127.0.0.1:${tlsServer.address().port}` }));
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  if (tlsServer) {
    tlsServer.close();
    tlsServer.closeAllConnections();
  }
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The launcher holds our stdin open; when it goes away (even killed hard) we go too, leaving no stray server.
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

// A business's view of pds, through a strict off-the-shelf client: openid-client v6.
//
// Usage: node flow.mjs <issuer> <client_id> <client_secret> <redirect_uri> <passphrase>
//                      [scope] [token]
//
// Discovery (RFC 8414), authorization code + PKCE S256 with state and the RFC 9207 `iss`
// check, the owner's sign-in and consent driven over plain HTTP as a browser would, the
// token request, a records read, a refresh (the refresh token must rotate), revocation
// (RFC 7009) and the read that must then fail. Prints one JSON object; exits 1 on failure.
// With a scope and the word "token", it stops after the token request and prints the access
// token (for tests that need a real token from a real flow, e.g. an auditor's).
import * as client from "openid-client";

const [issuer, clientId, clientSecret, redirectUri, passphrase, scope, mode] =
  process.argv.slice(2);
const result = {};

// -- a minimal browser: a cookie jar, manual redirects, HTML forms ------------------------
const jar = new Map();
function remember(response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const eq = pair.indexOf("=");
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}
async function browse(url, init = {}) {
  const response = await fetch(url, {
    ...init,
    redirect: "manual",
    headers: { ...(init.headers || {}), cookie: cookieHeader() },
  });
  remember(response);
  return response;
}
function decode(text) {
  return text
    .replaceAll("&quot;", '"')
    .replaceAll("&#34;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}
function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return m ? decode(m[1]) : null;
}
// The first POST form's action and the fields a browser would submit as the page stands
// (the owner's pages also carry the header's search form, a GET).
function readForm(html, base) {
  const form = html.match(/<form[^>]*method="post"[^>]*>[\s\S]*?<\/form>/);
  if (!form) throw new Error(`no form on the page at ${base}`);
  const action = new URL(attr(form[0].match(/<form[^>]*>/)[0], "action") || base, base);
  const fields = new URLSearchParams();
  for (const [tag] of form[0].matchAll(/<input[^>]*>/g)) {
    const name = attr(tag, "name");
    if (!name || /\sdisabled/.test(tag)) continue;
    const type = (attr(tag, "type") || "text").toLowerCase();
    if ((type === "checkbox" || type === "radio") && !/\schecked/.test(tag)) continue;
    if (type === "password") continue;
    fields.append(name, attr(tag, "value") ?? (type === "checkbox" ? "on" : ""));
  }
  return { action, fields };
}
function absolute(location, base) {
  return new URL(location, base).href;
}

// Follow the authorization request through sign-in and consent to the redirect URI.
async function authorize(url) {
  let response = await browse(url);
  for (let step = 0; step < 10; step++) {
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      const next = absolute(location, response.url || url);
      if (next.startsWith(redirectUri)) return next;
      url = next;
      response = await browse(url);
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${html}`);
    const { action, fields } = readForm(html, url);
    if (/name="passphrase"/.test(html)) {
      fields.set("passphrase", passphrase);
      result.signed_in = true;
    } else {
      fields.set("decision", "allow");
      result.consented = true;
    }
    response = await browse(action.href, {
      method: "POST",
      body: fields,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    if (response.status !== 303) throw new Error(`POST ${action} answered ${response.status}`);
  }
  throw new Error("too many steps before the redirect back");
}

try {
  const options = issuer.startsWith("http:") ? { execute: [client.allowInsecureRequests] } : {};
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    clientSecret,
    client.ClientSecretBasic(clientSecret),
    { ...options, algorithm: "oauth2" },
  );
  const meta = config.serverMetadata();
  result.discovered = {
    issuer: meta.issuer,
    pkce: meta.code_challenge_methods_supported,
    iss_parameter: meta.authorization_response_iss_parameter_supported,
  };

  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: scope || "read:transactions",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
  });
  const callback = await authorize(url.href);
  result.callback_has_iss = new URL(callback).searchParams.get("iss") === meta.issuer;

  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  result.token = { type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expires_in };
  if (mode === "token") {
    console.log(JSON.stringify({ ok: true, access_token: tokens.access_token }));
    process.exit(0);
  }

  const api = new URL("/api/v1/records?category=transactions&limit=5", issuer);
  const read = await client.fetchProtectedResource(config, tokens.access_token, api, "GET");
  const body = await read.json();
  result.records = { status: read.status, count: body.records.length };

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  result.refresh_rotated = refreshed.refresh_token !== tokens.refresh_token;
  const again = await client.fetchProtectedResource(config, refreshed.access_token, api, "GET");
  result.read_after_refresh = again.status;

  await client.tokenRevocation(config, refreshed.access_token, { token_type_hint: "access_token" });
  try {
    const after = await client.fetchProtectedResource(config, refreshed.access_token, api, "GET");
    result.read_after_revoke = after.status;
  } catch (error) {
    // openid-client raises on a 401 that carries a WWW-Authenticate challenge.
    result.read_after_revoke = error.status ?? error.response?.status ?? error.code;
    result.challenge = error.cause?.[0]?.parameters?.error ?? null;
  }
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = `${error.name}: ${error.message}${error.code ? ` (${error.code})` : ""}`;
  if (error.cause) result.cause = JSON.stringify(error.cause);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);

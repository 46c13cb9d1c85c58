// A business checks a pds consent receipt with an off-the-shelf JOSE library: jose (panva).
//
// Usage: node receipt.mjs < {"receipt": "<compact JWS>", "key": <the vault's public JWK>}
//
// Prints one JSON object: {"valid": true, "header": ..., "claims": ...} when the vault's key
// signed the receipt, else {"valid": false, "error": <jose's error code>}. The function
// between the markers is the one docs/oauth.md shows, word for word (a test checks).
import { readFileSync } from "node:fs";

// -- docs/oauth.md: verifyReceipt --
import { compactVerify, importJWK } from "jose";

export async function verifyReceipt(receipt, vaultKey) {
  const key = await importJWK(vaultKey, "Ed25519");
  const { payload, protectedHeader } = await compactVerify(receipt, key, {
    algorithms: ["Ed25519"],
  });
  if (protectedHeader.typ !== "kantara-cr+jwt") throw new Error("not a pds consent receipt");
  return JSON.parse(new TextDecoder().decode(payload));
}
// -- end --

const { receipt, key } = JSON.parse(readFileSync(0, "utf8"));
try {
  const claims = await verifyReceipt(receipt, key);
  const [header] = receipt.split(".");
  const protectedHeader = JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
  console.log(JSON.stringify({ valid: true, header: protectedHeader, claims }));
} catch (error) {
  console.log(JSON.stringify({ valid: false, error: error.code ?? error.message }));
}

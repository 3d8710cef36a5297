// A real OpenID provider for tests/tests/auth_oidc.rs: oidc-provider with the
// client-credentials grant, issuing JWT access tokens (RS256) for the resource
// `urn:orders-api` with audience `orders-api`. Two clients: `customer-123` (no scope) and
// `ops-admin` (may ask for `orders:admin`). Its discovery document and JWKS are the
// provider's own. Usage: node server.mjs <port>; prints "listening <issuer>" when ready.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.argv[2] || 0);
const issuer = `http://127.0.0.1:${port}`;

// Signing keys made for this run, as a real provider keeps its own.
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });

const provider = new Provider(issuer, {
  clients: [
    { client_id: "customer-123", client_secret: "customer-secret", grant_types: ["client_credentials"], redirect_uris: [], response_types: [] },
    { client_id: "ops-admin", client_secret: "admin-secret", grant_types: ["client_credentials"], redirect_uris: [], response_types: [], scope: "orders:admin" },
  ],
  scopes: ["openid", "orders:admin"],
  ttl: { ClientCredentials: 600 },
  jwks: { keys: [{ ...rsa, kid: "rsa-1", alg: "RS256", use: "sig" }, { ...ec, kid: "ec-1", alg: "ES256", use: "sig" }] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:orders-api",
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== "urn:orders-api") throw new Error("unknown resource");
        return {
          scope: "orders:admin",
          audience: "orders-api",
          accessTokenTTL: 600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log(`listening ${issuer}`);
});

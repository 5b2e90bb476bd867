/**
 * `identity-map/client`: what a producer or sync job needs without the server: the service's own key
 * derivation and precedence, and a typed REST client. Depends on nothing but the domain code.
 */
export * from "./keys.js";
export * from "./rest-client.js";

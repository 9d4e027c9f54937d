// Sign-in with the authorization code flow and PKCE (S256) on bureau's own sign-in page.
// The tokens stay in memory (never localStorage); only the PKCE verifier and state wait in
// sessionStorage while the browser is away on the sign-in page.

const PENDING = "bureau-dashboard-pkce";
const SCOPES = "firms:read agreements:read subscriptions:read users:read";

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = (length) => b64url(crypto.getRandomValues(new Uint8Array(length)));

export class Session {
  constructor(config) {
    this.config = config;
    this.tokens = null;
    this.expiresAt = 0;
    this.refreshing = null;
  }

  async signIn() {
    const verifier = random(32);
    const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const state = random(16);
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
    location.assign(`${this.config.bureauUrl}/oauth/authorize?` + new URLSearchParams({
      response_type: "code", client_id: this.config.clientId, redirect_uri: this.config.redirectUri,
      scope: SCOPES, state, code_challenge: challenge, code_challenge_method: "S256",
    }));
  }

  /** True when this page load is the sign-in coming back (?code= or ?error=). */
  static isCallback() {
    const params = new URLSearchParams(location.search);
    return params.has("code") || params.has("error");
  }

  async completeSignIn() {
    const params = new URLSearchParams(location.search);
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    // The code must not stay in the address bar (nor in history): the page shows no reload.
    history.replaceState(null, "", this.config.redirectUri);
    if (!pending || params.get("state") !== pending.state) throw new Error("This sign-in was not started here.");
    if (params.get("iss") !== null && params.get("iss").replace(/\/+$/, "") !== this.config.bureauUrl) {
      throw new Error("The sign-in came back from another server.");
    }
    if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
    await this.tokenRequest({ grant_type: "authorization_code", code: params.get("code"),
      redirect_uri: this.config.redirectUri, client_id: this.config.clientId, code_verifier: pending.verifier });
  }

  /** A valid access token, refreshed (with the rotated refresh token) shortly before it expires. */
  async accessToken({ force = false } = {}) {
    if (!this.tokens) throw new Error("Not signed in.");
    if (force || Date.now() > this.expiresAt - 60_000) {
      this.refreshing ??= this.tokenRequest({ grant_type: "refresh_token", client_id: this.config.clientId,
        refresh_token: this.tokens.refresh_token }).finally(() => { this.refreshing = null; });
      await this.refreshing;
    }
    return this.tokens.access_token;
  }

  /** fetch for /graphql with the bearer token; one refresh and retry when the token is refused. */
  fetch = async (uri, options = {}) => {
    const call = async (token) => fetch(uri, { ...options,
      headers: { ...options.headers, Authorization: `Bearer ${token}` } });
    const response = await call(await this.accessToken());
    return response.status === 401 ? call(await this.accessToken({ force: true })) : response;
  };

  async signOut() {
    const refreshToken = this.tokens?.refresh_token;
    this.tokens = null;
    if (refreshToken) {
      await fetch(`${this.config.bureauUrl}/oauth/revoke`, { method: "POST",
        body: new URLSearchParams({ token: refreshToken, client_id: this.config.clientId }) });
    }
  }

  async tokenRequest(form) {
    const response = await fetch(`${this.config.bureauUrl}/oauth/token`, { method: "POST",
      body: new URLSearchParams(form) });
    const body = await response.json();
    if (!response.ok) throw new Error(`Sign-in failed: ${body.error}`); // invalid_grant: sign in again
    this.tokens = body;
    this.expiresAt = Date.now() + body.expires_in * 1000;
  }
}

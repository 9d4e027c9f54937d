// Where the dashboard finds bureau, and as whom it signs in. Built in from Vite's env
// (VITE_BUREAU_URL, VITE_CLIENT_ID, VITE_REDIRECT_URI, VITE_FIRM_ID; see .env.example),
// and overridden by a config.json beside index.html when one is served: one build then
// runs against any server.

export async function loadConfig() {
  const env = import.meta.env;
  const config = {
    bureauUrl: env.VITE_BUREAU_URL || "http://127.0.0.1:8000",
    clientId: env.VITE_CLIENT_ID || "",
    // The page itself is the redirect URI: register exactly this with `bureau clients create`.
    redirectUri: env.VITE_REDIRECT_URI || new URL(".", location.href).href,
    // Optional: which of the signed-in person's firms to show (its global ID); else the first.
    firmId: env.VITE_FIRM_ID || "",
  };
  try {
    const response = await fetch(new URL("config.json", location.href), { cache: "no-store" });
    if (response.ok) Object.assign(config, await response.json());
  } catch {
    // No config.json: the built-in values stand.
  }
  config.bureauUrl = config.bureauUrl.replace(/\/+$/, "");
  if (!config.clientId) throw new Error("No client ID: set VITE_CLIENT_ID or clientId in config.json.");
  return config;
}

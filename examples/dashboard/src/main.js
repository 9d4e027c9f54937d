// The dashboard: the firm's agreements with their seats, kept current by seatUsageChanged.

import { apolloClient, applySeatChange, FIRST_FIRM, ONE_FIRM, SEATS_CHANGED } from "./api.js";
import { Session } from "./auth.js";
import { loadConfig } from "./config.js";
import "./style.css";

const app = document.getElementById("app");
const LICENSE_NAMES = { NAMED: "Named", CONCURRENT: "Concurrent", CLIENT_USER: "Client user" };

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

function show(...children) {
  app.replaceChildren(...children);
}

function showError(error) {
  show(h("p", { class: "error", role: "alert" }, String(error.message || error)),
    h("button", { id: "sign-in", type: "button" }, "Sign in again"));
  document.getElementById("sign-in").addEventListener("click", () => location.assign(location.pathname));
}

function seatCell(subscriptionId, seat) {
  return h("td", { class: "seats", "data-subscription-id": subscriptionId, "data-license-type": seat.licenseType },
    h("strong", {}, `${seat.inUse} / ${seat.purchased}`), ` ${LICENSE_NAMES[seat.licenseType] ?? seat.licenseType}`,
    h("span", { class: "hint" }, seat.nextPeriodPurchased !== seat.purchased
      ? ` (${seat.available} free; ${seat.nextPeriodPurchased} from the next period)` : ` (${seat.available} free)`));
}

function agreementRows(agreement) {
  const subscription = agreement.subscription;
  const head = [h("th", { scope: "row" }, agreement.name), h("td", {}, agreement.customerNumber ?? ""),
    h("td", {}, subscription ? `${subscription.edition.name} (${subscription.status.toLowerCase()})` : "no licence")];
  const seats = subscription?.seats ?? [];
  if (seats.length === 0) return [h("tr", { "data-agreement-id": agreement.id }, ...head, h("td", {}, ""))];
  return seats.map((seat, index) => h("tr", { "data-agreement-id": agreement.id },
    ...(index === 0 ? head.map((cell) => { cell.rowSpan = seats.length; return cell; }) : []),
    seatCell(subscription.id, seat)));
}

function render(firm, user, live) {
  const agreements = firm.agreements.edges.map((edge) => edge.node);
  show(
    h("header", {},
      h("h1", {}, firm.name),
      h("p", {}, `Signed in as ${user?.name ?? "?"} · `,
        h("span", { id: "live", class: live }, { connected: "live", connecting: "connecting…" }[live] ?? "reconnecting…"),
        " · ", h("button", { id: "sign-out", type: "button", class: "link" }, "Sign out"))),
    h("table", { id: "agreements" },
      h("caption", {}, `${firm.agreements.totalCount} agreements · seats in use / bought`),
      h("thead", {}, h("tr", {}, ...["Agreement", "Customer no.", "Edition", "Seats"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...agreements.flatMap(agreementRows))));
}

async function main() {
  const config = await loadConfig();
  const session = new Session(config);
  if (!Session.isCallback()) {
    show(h("h1", {}, "Partner dashboard"), h("p", {}, "The firm's agreements and their seats, live."),
      h("button", { id: "sign-in", type: "button" }, "Sign in with bureau"));
    document.getElementById("sign-in").addEventListener("click", () => session.signIn().catch(showError));
    return;
  }
  show(h("p", {}, "Signing in…"));
  await session.completeSignIn();

  let live = "connecting", latest = null;
  const signOut = () => session.signOut().then(() => {
    client.stop();
    location.assign(location.pathname);
  });
  const redraw = () => {
    if (!latest) return;
    render(latest.firm, latest.user, live);
    document.getElementById("sign-out").addEventListener("click", signOut);
  };
  const client = apolloClient(config, session, (state) => {
    const reconnected = state === "connected" && live === "disconnected";
    live = state;
    redraw();
    if (reconnected) client.refetchObservableQueries(); // what changed while the socket was down
  });
  const query = config.firmId ? { query: ONE_FIRM, variables: { firmId: config.firmId } } : { query: FIRST_FIRM };
  const watched = new Set();
  client.watchQuery(query).subscribe({
    next: ({ data, error }) => {
      if (error) return showError(error);
      if (!data) return;
      const firm = config.firmId ? data.firm : data.viewer.firms.edges[0]?.node;
      if (!firm) return showError(new Error("You are not on the staff of any firm."));
      latest = { firm, user: data.viewer.user };
      redraw();
      for (const { node } of firm.agreements.edges) {
        const id = node.subscription?.id;
        if (!id || watched.has(id)) continue;
        watched.add(id);
        client.subscribe({ query: SEATS_CHANGED, variables: { id } }).subscribe({
          next: ({ data: change }) => change && applySeatChange(client, id, change.seatUsageChanged),
          error: (error) => console.error("seatUsageChanged", id, error),
        });
      }
    },
    error: showError,
  });
}

main().catch(showError);

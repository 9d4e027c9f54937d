// Apollo Client for bureau: queries over HTTP, subscriptions over graphql-ws (the
// graphql-transport-ws protocol), which takes the token in connection_init's payload.

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";

const SEAT_FIELDS = "licenseType purchased inUse available nextPeriodPurchased";
const AGREEMENTS = `agreements(first: 100) { totalCount edges { node {
  id name customerNumber billingMode
  subscription { id status edition { name } seats { ${SEAT_FIELDS} } } } } }`;

export const FIRST_FIRM = gql`query Dashboard {
  viewer { user { name email } firms(first: 1) { edges { node { id name ${AGREEMENTS} } } } } }`;
export const ONE_FIRM = gql`query DashboardFirm($firmId: ID!) {
  viewer { user { name email } } firm(id: $firmId) { id name ${AGREEMENTS} } }`;
export const SEATS_CHANGED = gql`subscription SeatsChanged($id: ID!) {
  seatUsageChanged(subscriptionId: $id) { ${SEAT_FIELDS} } }`;

/** The client, and the websocket's state changes for `onLive(state)`. */
export function apolloClient(config, session, onLive) {
  const http = new HttpLink({ uri: `${config.bureauUrl}/graphql`, fetch: session.fetch });
  const ws = createClient({
    url: `${config.bureauUrl.replace(/^http/, "ws")}/graphql`,
    // Asked again on every (re)connection: a refreshed token when the old one is near its end.
    connectionParams: async () => ({ Authorization: `Bearer ${await session.accessToken()}` }),
    retryAttempts: Infinity,
    shouldRetry: () => true,
    on: {
      connected: () => onLive("connected"),
      closed: (event) => {
        if (event?.code !== 1000) console.warn("live updates: the socket closed", event?.code, event?.reason);
        onLive("disconnected");
      },
    },
  });
  const link = ApolloLink.split((operation) => operation.operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(ws), http);
  const cache = new InMemoryCache({
    typePolicies: {
      // Seat pools have no ID of their own: a subscription's list is replaced as a whole.
      LicenseSubscription: { fields: { seats: { merge: false } } },
    },
  });
  return new ApolloClient({ link, cache });
}

/** Writes one changed seat pool into the cached subscription, so every query showing it updates. */
export function applySeatChange(client, subscriptionId, pool) {
  client.cache.modify({
    id: client.cache.identify({ __typename: "LicenseSubscription", id: subscriptionId }),
    fields: {
      seats(existing = [], { readField }) {
        const others = existing.filter((seat) => readField("licenseType", seat) !== pool.licenseType);
        return [...others, pool].sort((a, b) => ORDER.indexOf(a.licenseType) - ORDER.indexOf(b.licenseType));
      },
    },
  });
}

const ORDER = ["NAMED", "CONCURRENT", "CLIENT_USER"];

// bureau's GraphiQL (R88). The Headers editor's headers go with every request, the schema's
// introspection and subscriptions too; when they change, GraphiQL gets a new fetcher and so loads the schema again:
// docs, completion and checking follow the token pasted there.
(function () {
  "use strict";
  var url = window.location.origin + "/graphql";
  var DEFAULT_HEADERS = '{\n  "Authorization": "Bearer "\n}';
  var DEFAULT_QUERY = [
    "# Paste your token into Headers below, then run this (Ctrl-Enter).",
    "{",
    "  viewer {",
    "    user { name }",
    "    firms { edges { node { name agreements { totalCount } } } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  var introspectedWith = null;
  var pending = null;

  function parses(text) {
    try {
      var value = JSON.parse(text || "{}");
      return value !== null && typeof value === "object" && !Array.isArray(value);
    } catch (error) {
      return false;
    }
  }

  // The token as `bureau demo` prints it works with or without "Bearer " before it; an empty
  // "Bearer " sends no header at all (with BUREAU_INTROSPECTION=on the schema loads without one).
  function withToken(headers) {
    var result = {};
    Object.keys(headers || {}).forEach(function (name) {
      var value = String(headers[name]).trim();
      if (name.toLowerCase() === "authorization") {
        if (value === "" || value.toLowerCase() === "bearer") return;
        if (value.indexOf(" ") < 0) value = "Bearer " + value;
      }
      result[name] = value;
    });
    return result;
  }

  // Subscriptions go over graphql-transport-ws on the same address; GraphiQL sends the headers
  // as the connection_init payload, which is where bureau reads the token of a WebSocket.
  var base = GraphiQL.createFetcher({ url: url, subscriptionUrl: url.replace(/^http/, "ws") });
  function fetcher() {
    return function (params, options) {
      var opts = Object.assign({}, options || {});
      opts.headers = withToken(opts.headers);
      return base(params, opts);
    };
  }

  function render(headers) {
    introspectedWith = headers;
    root.render(React.createElement(GraphiQL, {
      fetcher: fetcher(), // a new one makes GraphiQL load the schema again
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false, // a token stays in this tab, never in localStorage
      onEditHeaders: function (text) {
        window.clearTimeout(pending);
        pending = window.setTimeout(function () {
          if (text !== introspectedWith && parses(text)) render(text);
        }, 300);
      },
    }));
  }

  render(DEFAULT_HEADERS);
})();

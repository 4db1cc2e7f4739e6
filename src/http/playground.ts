import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

/**
 * What a newcomer's first visit opens with (a browser that has no GraphiQL tabs stored yet, and no
 * `?query=` in the URL): one tab of example operations, the way through the product in a few minutes.
 * Its variables are made in the page, so `endTime` is always two minutes ahead. Checked against the
 * schema by tests/unit/playground.test.ts, run in a browser by `npm run check:playground`.
 */
export const EXAMPLE_OPERATIONS = `# Welcome to Deadline: auctions that end on time, orders that expire, payments reconciled,
# everything live over WebSocket.
#
# 1. Paste a token in the bar above and press "Use token":
#      npm run token -- alice              a user
#      npm run token -- admin --admin      an admin (products, jobs)
# 2. Press the run button and pick an operation. Each reads its variables from the Variables pane.
#
#   CreateAuction   an auction ending two minutes after this page was opened.
#   Countdown       copy the auction's id into "auctionId" first: its remaining time every second,
#                   a last event when it ends, then the subscription completes.
#   PlaceBid        as another user (a second token): a bid in the last 30 s moves the end.
#   CreateProduct   (admin) copy its id into "productId" for CreateOrder.
#   CreateOrder     a WECHAT order: paid through the payment sandbox (npm run sandbox:pay), or
#                   EXPIRED after ORDER_EXPIRE_MINUTES.
#   Jobs            (admin) the job catalogue: deadline wake-ups and periodic work, next and last runs.

mutation CreateAuction($endTime: DateTime!) {
  createAuction(input: { nftId: "nft-1", title: "My first auction", startingPrice: 100, minIncrement: 10, endTime: $endTime, softCloseSeconds: 30 }) {
    id
    title
    endTime
    status
  }
}

subscription Countdown($auctionId: ID!) {
  auctionCountdown(auctionId: $auctionId) {
    remainingMs
    endTime
    status
  }
}

mutation PlaceBid($auctionId: ID!) {
  placeBid(input: { auctionId: $auctionId, amount: 150 }) {
    id
    highestBid
    highestBidderId
    endTime
  }
}

mutation CreateProduct {
  createProduct(input: { name: "Green tea", price: 1200, kind: GOODS, stock: 100 }) {
    id
    name
    price
  }
}

mutation CreateOrder($productId: ID!) {
  createOrder(input: { productId: $productId, quantity: 1, paymentMethod: WECHAT }) {
    id
    orderNo
    status
    amount
    expiresAt
    payment {
      provider
      codeUrl
    }
  }
}

query Jobs {
  jobs {
    name
    kind
    schedule
    nextRunAt
    lastFinishedAt
    lastError
  }
}
`;

/**
 * GraphiQL, bundled in the npm package and served from here: no CDN, works offline. Queries and
 * mutations go over HTTP, subscriptions over graphql-ws on the same URL. A token typed into the bar
 * at the top is kept in localStorage and sent as `Authorization` on HTTP and in `connectionParams`;
 * an admin's also sets the cookie that opens Agendash at /admin/jobs (src/http/admin.ts).
 */
const tokenBar = `
<div id="deadline-token" style="font:13px system-ui,sans-serif;padding:6px 10px;background:#0f172a;color:#e2e8f0;display:flex;gap:8px;align-items:center">
  <strong>Deadline</strong><span>Bearer token</span>
  <input id="deadline-token-input" style="flex:1;font:12px monospace" placeholder="paste the output of: npm run token -- &lt;userId&gt; [--admin]" />
  <button id="deadline-token-save">Use token</button>
  <a id="deadline-admin-jobs" href="/admin/jobs/" target="_blank" style="color:#93c5fd">Jobs dashboard (admins)</a>
</div>
<script>
  (function () {
    var input = document.getElementById('deadline-token-input');
    input.value = localStorage.getItem('deadline.token') || '';
    document.getElementById('deadline-token-save').onclick = function () {
      var token = input.value.trim();
      localStorage.setItem('deadline.token', token);
      // The browser cannot send a header when it opens /admin/jobs: an admin token also sets the admin
      // cookie (HttpOnly); any other token clears it.
      var done = function () { location.reload(); };
      var clear = function () { return fetch('/admin/session', { method: 'DELETE' }); };
      (token
        ? fetch('/admin/session', { method: 'POST', headers: { authorization: 'Bearer ' + token } }).then(function (r) { return r.ok ? r : clear(); })
        : clear()
      ).then(done, done);
    };
    window.__deadlineRender = function (root, opts) {
      var token = localStorage.getItem('deadline.token');
      if (token) {
        // GraphiQL's own fetcher calls globalThis.fetch: add the header there, unless the Headers tab set one.
        var fetch0 = window.fetch.bind(window);
        window.fetch = function (input, init) {
          init = init || {};
          var headers = new Headers(init.headers);
          if (!headers.has('authorization')) headers.set('authorization', 'Bearer ' + token);
          init.headers = headers;
          return fetch0(input, init);
        };
        opts.connectionParams = { authorization: 'Bearer ' + token };
      }
      // A first visit (GraphiQL has no tabs stored) opens on the examples' tab, unless the URL asks for
      // a query (links to the playground keep working). The variables go in twice: GraphiQL fills its
      // Variables pane from initialVariables (Yoga's \`variables\`), not from the tab.
      if (!new URLSearchParams(location.search).has('query') && !localStorage.getItem('graphiql:tabState')) {
        var variables = JSON.stringify({
          endTime: new Date(Date.now() + 120000).toISOString(),
          auctionId: 'the id CreateAuction answered',
          productId: 'the id CreateProduct answered',
        }, null, 2);
        opts.defaultTabs = [{ query: window.__deadlineExamples, variables: variables }];
        opts.variables = variables;
      }
      root.style.height = 'calc(100vh - 40px)';
      YogaGraphiQL.renderYogaGraphiQL(root, opts);
    };
  })();
</script>`;

let cached: string | undefined;

export function playgroundHtml(): string {
  if (cached) return cached;
  const html = renderGraphiQL({
    title: 'Deadline GraphQL',
    endpoint: '/graphql',
    subscriptionsProtocol: 'WS',
    defaultQuery: '{\n  serverTime\n}\n',
  });
  cached = html
    .replace(
      '<body id="body" class="no-focus-outline">',
      // A function, so the `$` of the examples' variables is not read as a replacement pattern; JSON
      // inside a script with `<` escaped, so no text of the examples can close the tag.
      () => `<body id="body" class="no-focus-outline" style="margin:0"><script>window.__deadlineExamples = ${JSON.stringify(EXAMPLE_OPERATIONS).replace(/</g, '\\u003c')};</script>${tokenBar}`,
    )
    // The call at the end of the page, not any mention inside the inlined bundle.
    .replace(/YogaGraphiQL\.renderYogaGraphiQL\((?![\s\S]*YogaGraphiQL\.renderYogaGraphiQL\()/, 'window.__deadlineRender(');
  if (!cached.includes('window.__deadlineRender(')) throw new Error('GraphiQL page layout changed');
  return cached;
}

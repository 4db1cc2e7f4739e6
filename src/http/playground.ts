import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

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
  } as Parameters<typeof renderGraphiQL>[0]);
  cached = html
    .replace('<body id="body" class="no-focus-outline">', `<body id="body" class="no-focus-outline" style="margin:0">${tokenBar}`)
    // The call at the end of the page, not any mention inside the inlined bundle.
    .replace(/YogaGraphiQL\.renderYogaGraphiQL\((?![\s\S]*YogaGraphiQL\.renderYogaGraphiQL\()/, 'window.__deadlineRender(');
  if (!cached.includes('window.__deadlineRender(')) throw new Error('GraphiQL page layout changed');
  return cached;
}

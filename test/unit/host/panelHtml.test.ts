/**
 * The panel's HTML: a strict CSP with a nonce, and no data in the page.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeNonce, renderPanelHtml } from "../../../extension/host/panelHtml";

test("renderPanelHtml sets a strict CSP with the nonce and carries no data", () => {
  const nonce = makeNonce();
  const html = renderPanelHtml({ scriptUri: "https://file+.vscode-resource/dist/webview/main.js", styleUri: "https://x/panel.css", cspSource: "https://x", nonce, title: "<b>LoRA</b> & co" });
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
  assert.equal(csp, `default-src 'none'; img-src https://x data:; style-src https://x 'nonce-${nonce}'; font-src https://x; script-src 'nonce-${nonce}'`);
  assert.match(html, new RegExp(`<script nonce="${nonce.replace(/[+/]/g, "\\$&")}" src="https://file\\+.vscode-resource/dist/webview/main.js"></script>`));
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.ok(html.includes("<title>&lt;b&gt;LoRA&lt;/b&gt; &amp; co</title>"));
  assert.ok(!/unsafe-inline|unsafe-eval/.test(html));
  assert.notEqual(makeNonce(), nonce);
  assert.throws(() => renderPanelHtml({ scriptUri: "a", styleUri: "b", cspSource: "c", nonce: "x'; script-src *", title: "t" }));
});

/**
 * The LoRA-drop panel's HTML shell. Pure (no `vscode` import) so the browser test can render exactly what
 * the host serves. The page carries no data: everything arrives as validated messages after `ready`.
 */
import { randomBytes } from "node:crypto";

/** What the host supplies to build the page; URIs are already converted with `webview.asWebviewUri`. */
export interface PanelHtmlOptions {
  /** The bundled webview script (dist/webview/main.js). */
  scriptUri: string;
  /** The panel stylesheet (dist/webview/panel.css, copied there from media/ by scripts/bundle.mjs). */
  styleUri: string;
  /** Optional codicons stylesheet; vscode-elements' <vscode-icon> looks it up by the id set below. */
  codiconsUri?: string;
  /** `webview.cspSource`: the origin the webview serves local resources from. */
  cspSource: string;
  /** A fresh nonce per page load (see makeNonce). */
  nonce: string;
  /** The panel's title, shown as the document title (escaped). */
  title: string;
}

/** Returns the panel's complete HTML document with a strict Content-Security-Policy. */
export function renderPanelHtml(options: PanelHtmlOptions): string {
  const { scriptUri, styleUri, codiconsUri, cspSource, nonce, title } = options;
  if (!/^[A-Za-z0-9+/=_-]{16,}$/.test(nonce)) throw new Error("renderPanelHtml: the nonce must be 16+ base64 characters (use makeNonce()).");
  // vscode-elements (Lit) styles its components through constructable stylesheets (adoptedStyleSheets),
  // which CSP does not govern, and sets dynamic styles through the CSSOM, which CSP allows; so neither
  // 'unsafe-inline' nor 'unsafe-eval' is needed. The nonce on style-src covers no element today; it is
  // kept so a future <style nonce> needs no policy change. img-src allows data: for the PNG export preview.
  const csp = [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
  const codicons = codiconsUri ? `\n    <link rel="stylesheet" id="vscode-codicon-stylesheet" href="${escapeAttribute(codiconsUri)}" nonce="${nonce}">` : "";
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link rel="stylesheet" href="${escapeAttribute(styleUri)}" nonce="${nonce}">${codicons}
    <title>${escapeText(title)}</title>
  </head>
  <body>
    <main id="app" aria-busy="true">
      <p class="placeholder" id="app-placeholder">Waiting for a LoRA-drop profile…</p>
    </main>
    <script nonce="${nonce}" src="${escapeAttribute(scriptUri)}"></script>
  </body>
</html>
`;
}

/** Returns a fresh random nonce (24 bytes, base64) for one page load. */
export function makeNonce(): string {
  return randomBytes(24).toString("base64");
}

/** Escapes text for an HTML attribute value in double quotes. */
function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Escapes text for an HTML text node. */
function escapeText(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

import { readFileSync } from 'node:fs';

/** The dashboard page as the build bundled it (src/dashboard/bundle.ts). */
export interface DashboardAsset {
  /** One HTML document with uPlot, the style and the script inlined. */
  readonly html: string;
  /** The Content-Security-Policy that allows exactly its inline scripts. */
  readonly csp: string;
}

/** Reads the bundled page beside this module; null when the build did not bundle it (the route then says so: E_DASHBOARD_NOT_BUILT). */
export function loadDashboard(): DashboardAsset | null {
  let text: string;
  try {
    text = readFileSync(new URL('./dashboard.json', import.meta.url), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return JSON.parse(text) as DashboardAsset;
}

/** The sign-in cookie's name: it carries a value derived from one of the node's tokens (TokenGuard.sessionValue). */
export const SESSION_COOKIE = 'strata_session';

/** The value of the sign-in cookie in a Cookie header, or ''. */
export function sessionCookie(cookieHeader: string): string {
  for (const part of cookieHeader.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim());
      } catch {
        return '';
      }
    }
  }
  return '';
}

/** The page a browser gets instead of the dashboard when the node has tokens and the request carries none that is valid. */
export function signInPage(failed: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Strata dashboard: sign in</title>
<style>body{font:15px system-ui,sans-serif;max-width:420px;margin:80px auto;color:#1d2330}input{font:inherit;width:100%;padding:6px;margin:6px 0}button{font:inherit;padding:6px 14px}.bad{color:#c62828}</style></head>
<body><h1>Strata dashboard</h1>
<p>This node has tokens: sign in with one of them (<code>--tokens</code> / <code>STRATA_TOKENS</code>).</p>
${failed ? '<p class="bad">That token is not one of this node\'s.</p>' : ''}
<form method="post" action="/dashboard/sign-in"><label>Token <input name="token" type="password" autocomplete="current-password" required minlength="8" autofocus></label>
<button type="submit">Sign in</button></form></body></html>`;
}

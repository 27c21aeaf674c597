/**
 * Hash routes (`#/jobs?state=Running`): the server serves one page, and a
 * page's filters live in the URL, so a view can be bookmarked, shared and
 * reloaded. The token is never part of it.
 */
export interface Route {
  path: string[];
  params: URLSearchParams;
}

export function currentRoute(): Route {
  const hash = location.hash.replace(/^#\/?/, '');
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  return {
    path: path.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p)),
    params: new URLSearchParams(q < 0 ? '' : hash.slice(q + 1)),
  };
}

export type Params = Record<string, string | null | undefined>;

export function href(path: readonly string[], params: Params = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== '') query.set(key, value);
  const text = query.toString();
  return `#/${path.map((p) => encodeURIComponent(p)).join('/')}${text ? `?${text}` : ''}`;
}

/** Writes a page's filters into the URL without a new history entry or a re-render. */
export function replaceParams(params: Params): void {
  history.replaceState(null, '', href(currentRoute().path, params));
}

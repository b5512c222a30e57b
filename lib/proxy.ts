/** Which proxy, if any, carries requests to the API: the explicit option, else HTTPS_PROXY / NO_PROXY. */

/** Whether NO_PROXY (comma or space separated: `*`, `host`, `.domain`, `domain`, `host:port`) exempts the URL. */
export function noProxyMatches(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase());
      const entryHost = (m?.[1] ?? '').replace(/^\*?\./, '.').replace(/^\[|\]$/g, '');
      if (m?.[2] && m[2] !== port) return false;
      if (entryHost.startsWith('.')) return host.endsWith(entryHost) || host === entryHost.slice(1);
      return host === entryHost || host.endsWith(`.${entryHost}`);
    });
}

/** The proxy URL for the API, or undefined for a direct connection. */
export function proxyFor(
  target: URL,
  option: string | false | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (option === false) return undefined;
  if (typeof option === 'string' && option.trim() !== '') return option.trim();
  const fromEnv = env.HTTPS_PROXY || env.https_proxy;
  if (!fromEnv || noProxyMatches(target, env.NO_PROXY ?? env.no_proxy)) return undefined;
  return fromEnv;
}

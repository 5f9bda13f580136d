/**
 * What a process keeps per AWS SDK client, by name (an object's location, a key ID). It lives as
 * long as the client does — across the invocations of a warm Lambda container — and is never
 * shared between clients, so runs with clients of their own (and tests) share nothing.
 */
export function perClient<C extends object, V>(): (client: C) => Map<string, V> {
  const kept = new WeakMap<C, Map<string, V>>();
  return (client) => {
    let values = kept.get(client);
    if (!values) {
      values = new Map();
      kept.set(client, values);
    }
    return values;
  };
}

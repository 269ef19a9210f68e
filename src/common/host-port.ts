/** "host:port" (IPv6 hosts in brackets) → [host without brackets, port]; throws on anything else. */
export function splitHostPort(listen: string): [string, number] {
  const at = listen.lastIndexOf(":");
  const port = Number(listen.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected host:port, got ${JSON.stringify(listen)}`);
  return [listen.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port];
}

/**
 * Fills in the site-specific values of a shipped Envoy config (envoy/*.yaml): the lines marked
 * EDIT there. Works on the parsed structure, not on text placeholders, so the shipped files stay
 * valid Envoy configs that the config test checks as they are.
 */
import { parse, stringify } from "yaml";

export interface EnvoySite {
  /** Address and port of the client-facing listener. */
  readonly listenAddress: string;
  readonly listenPort: number;
  readonly adminPort: number;
  /** The router's ext_proc address, host:port. */
  readonly routerAddress: string;
  /** The replicas, ip:port each (= the router's worker addresses). */
  readonly replicas: readonly string[];
}

// The parsed YAML is walked by key; its shape was checked by the config test.
type Obj = Record<string, any>;

function socketAddress(hostPort: string): Obj {
  const i = hostPort.lastIndexOf(":");
  return { socket_address: { address: hostPort.slice(0, i), port_value: Number(hostPort.slice(i + 1)) } };
}

function cluster(config: Obj, name: string): Obj {
  const c = (config.static_resources?.clusters ?? []).find((x: Obj) => x.name === name);
  if (!c) throw new Error(`the config has no cluster named ${name}`);
  return c;
}

/** The config text with the site's values; throws if the config lacks an expected part. */
export function renderEnvoyConfig(yamlText: string, site: EnvoySite): string {
  const config = parse(yamlText) as Obj;
  config.admin.address = socketAddress(`127.0.0.1:${site.adminPort}`);
  const listeners: Obj[] = config.static_resources.listeners;
  if (listeners.length !== 1) throw new Error(`expected one listener, found ${listeners.length}`);
  listeners[0].address = socketAddress(`${site.listenAddress}:${site.listenPort}`);
  cluster(config, "prefix_router").load_assignment.endpoints = [{ lb_endpoints: [{ endpoint: { address: socketAddress(site.routerAddress) } }] }];
  cluster(config, "vllm").load_assignment.endpoints = [{ lb_endpoints: site.replicas.map((r) => ({ endpoint: { address: socketAddress(r) } })) }];
  return stringify(config, { lineWidth: 0 });
}

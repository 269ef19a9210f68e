/**
 * Standard gRPC services added to our servers: grpc.health.v1 (always; load balancers and Envoy
 * health checks use it) and server reflection (only when configured, for grpcurl and friends).
 */
import type { Server } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";

export interface StandardServices {
  readonly health: HealthImplementation;
}

/** `services` are the fully qualified service names this server answers for. */
export function addStandardServices(server: Server, services: readonly string[], definition: PackageDefinition, reflection: boolean): StandardServices {
  const health = new HealthImplementation(Object.fromEntries([["", "SERVING"], ...services.map((s) => [s, "SERVING"])]));
  health.addToServer(server);
  if (reflection) new ReflectionService(definition).addToServer(server);
  return { health };
}

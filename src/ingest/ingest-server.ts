/**
 * The gRPC adapter of the ingest API (proto/prefix_router/ingest/v1/ingest.proto): auth, then
 * validation (all-or-nothing), then the IngestService. Listens on its own port, optionally TLS.
 */
import { readFileSync } from "node:fs";
import { Server, ServerCredentials, status, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall } from "@grpc/grpc-js";
import { addStandardServices } from "../common/grpc-services";
import type { IngestConfig } from "../config/schema";
import type { BlockKey } from "../prefix/block-keys";
import { IngestAuth } from "./ingest-auth";
import { KV_INGEST_SERVICE, kvIngestDefinition, kvIngestService } from "./ingest-proto";
import { BatchValidator, decodeKeys, type WireBatch, type WireResyncPage } from "./ingest-batch";
import type { IngestService } from "./ingest-service";

export interface IngestServerDeps {
  readonly config: IngestConfig;
  readonly reflection?: boolean;
  readonly validator: BatchValidator;
  readonly auth: IngestAuth;
  readonly service: IngestService;
}

interface PushReply {
  status: "APPLIED" | "DUPLICATE" | "RESYNC_REQUIRED";
  applied_seq: string;
  message: string;
}

type GrpcError = { code: status; details: string };

export function createIngestServer(deps: IngestServerDeps): Server {
  const { validator, auth, service } = deps;
  const server = new Server({
    "grpc.max_receive_message_length": deps.config.maxMessageBytes,
    "grpc.max_send_message_length": deps.config.maxMessageBytes,
  });

  // Order: authenticate (UNAUTHENTICATED), validate (INVALID_ARGUMENT), authorize the worker (PERMISSION_DENIED).
  const authenticate = (metadata: { get(key: string): unknown[] }): { worker: string } | GrpcError => {
    const caller = auth.authenticate(String(metadata.get("authorization")[0] ?? ""));
    if (caller.ok) return caller;
    service.counters.reject("unauthenticated");
    return { code: status.UNAUTHENTICATED, details: caller.message };
  };
  const authorize = (caller: { worker: string }, worker: string): GrpcError | null => {
    const verdict = auth.authorize(caller, worker);
    if (verdict.ok) return null;
    service.counters.reject("permission-denied");
    return { code: status.PERMISSION_DENIED, details: verdict.message };
  };
  let openResyncs = 0;
  const invalid = (message: string): GrpcError => {
    service.counters.reject("invalid-argument");
    return { code: status.INVALID_ARGUMENT, details: message };
  };

  server.addService(kvIngestService(), {
    Push: (call: ServerUnaryCall<WireBatch, PushReply>, callback: sendUnaryData<PushReply>) => {
      const caller = authenticate(call.metadata);
      if ("code" in caller) return callback(caller);
      const batch = validator.batch(call.request);
      if (!batch.ok) return callback(invalid(batch.message));
      const denied = authorize(caller, batch.value.worker);
      if (denied) return callback(denied);
      service.push(batch.value).then(
        (out) => callback(null, { status: out.status, applied_seq: String(out.appliedSeq), message: out.message }),
        (err: unknown) => callback({ code: status.UNAVAILABLE, details: `could not apply the batch: ${String(err)}` }),
      );
    },

    Resync: (call: ServerReadableStream<WireResyncPage, { keys: string; applied_seq: string }>, callback: sendUnaryData<{ keys: string; applied_seq: string }>) => {
      const caller = authenticate(call.metadata);
      let header: { worker: string; epoch: string; seq: number } | undefined;
      const keys: BlockKey[] = [];
      let failed = false;
      let finished = false;
      // An admitted resync counts until it is applied or given up (its keys are held till then).
      let admitted = false;
      const leave = () => {
        if (admitted) openResyncs--;
        admitted = false;
      };
      const fail = (err: GrpcError) => {
        if (failed || finished) return;
        failed = true;
        leave();
        callback(err);
        call.destroy();
      };
      if ("code" in caller) {
        fail(caller);
        return;
      }
      if (openResyncs >= deps.config.maxConcurrentResyncs) {
        service.counters.reject("resource-exhausted");
        fail({ code: status.RESOURCE_EXHAUSTED, details: `ingest.maxConcurrentResyncs (${deps.config.maxConcurrentResyncs}) resyncs are in progress; retry later` });
        return;
      }
      openResyncs++;
      admitted = true;
      call.on("cancelled", () => {
        if (!finished) fail({ code: status.CANCELLED, details: "the client cancelled the resync" });
      });
      call.on("data", (page: WireResyncPage) => {
        if (failed || finished) return;
        const head = validator.header(page);
        if (!head.ok) return fail(invalid(head.message));
        if (!header) {
          const denied = authorize(caller, head.value.worker);
          if (denied) return fail(denied);
          header = head.value;
        } else if (head.value.worker !== header.worker || head.value.epoch !== header.epoch || head.value.seq !== header.seq) {
          return fail(invalid("every page of a resync must carry the same worker_id, epoch and seq"));
        }
        const decoded = decodeKeys(page.keys, "keys");
        if (!decoded.ok) return fail(invalid(decoded.message));
        if (keys.length + decoded.value.length > deps.config.maxResyncKeys) return fail(invalid(`resync exceeds ingest.maxResyncKeys ${deps.config.maxResyncKeys}`));
        for (const k of decoded.value) keys.push(k);
        if (page.last) {
          finished = true;
          service.resync({ ...header, keys }).then(
            (r) => (leave(), callback(null, { keys: String(r.keys), applied_seq: String(r.appliedSeq) })),
            (err: unknown) => (leave(), callback({ code: status.UNAVAILABLE, details: `could not apply the resync: ${String(err)}` })),
          );
        }
      });
      call.on("end", () => {
        if (!failed && !finished) fail(invalid("resync stream ended without a page marked last; nothing was applied"));
      });
    },
  });
  addStandardServices(server, [KV_INGEST_SERVICE], kvIngestDefinition(), deps.reflection ?? false);
  return server;
}

/** Server credentials from the config: TLS (optionally mutual) when configured, else insecure. */
export function ingestCredentials(config: IngestConfig): ServerCredentials {
  if (!config.tls) return ServerCredentials.createInsecure();
  const ca = config.tls.clientCa ? readFileSync(config.tls.clientCa) : null;
  return ServerCredentials.createSsl(ca, [{ private_key: readFileSync(config.tls.key), cert_chain: readFileSync(config.tls.cert) }], ca !== null);
}

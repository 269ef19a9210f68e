/**
 * One simulated replica with its KV-event reporting wired: the HTTP server, plus the ingest
 * reporter (the vllm-patch plugin's push) and/or vLLM's native ZMQ publisher, each fed every KV
 * event the engine emits. Used by `prefix-router sim` and the end-to-end tests.
 */
import { IngestReporter } from "./ingest-reporter";
import { startSimServer, type SimServer, type SimServerOptions } from "./sim-server";
import { ZmqKvPublisher } from "./zmq-kv-publisher";

export interface SimIngestOptions {
  /** host:port of the router's ingest server. */
  readonly target: string;
  readonly token?: string;
  readonly flushMs?: number;
  readonly heartbeatMs?: number;
}

export interface SimZmqOptions {
  /** PUB endpoint to bind, e.g. tcp://127.0.0.1:5557. */
  readonly endpoint: string;
  readonly replayEndpoint?: string;
  readonly topic?: string;
}

export interface SimReplicaOptions extends SimServerOptions {
  readonly ingest?: SimIngestOptions;
  readonly zmq?: SimZmqOptions;
  readonly onError?: (message: string) => void;
}

export interface SimReplica {
  readonly server: SimServer;
  readonly reporter: IngestReporter | null;
  readonly publisher: ZmqKvPublisher | null;
  close(): Promise<void>;
}

export async function startSimReplica(options: SimReplicaOptions): Promise<SimReplica> {
  const server = await startSimServer(options);
  let publisher: ZmqKvPublisher | null = null;
  let reporter: IngestReporter | null = null;
  try {
    if (options.zmq) {
      const pub = await ZmqKvPublisher.start({ ...options.zmq, blockSize: options.engine.blockSize });
      publisher = pub;
      server.addKvSink((events) => pub.publish(events));
    }
    if (options.ingest) {
      const r = new IngestReporter({
        ...options.ingest,
        workerId: options.id,
        model: options.model,
        blockSize: options.engine.blockSize,
        snapshot: () => server.engine.cachedKeys(),
        ...(options.onError ? { onError: options.onError } : {}),
      });
      reporter = r;
      server.addKvSink((events) => r.offer(events));
      r.start();
    }
  } catch (err) {
    await publisher?.close();
    await server.close();
    throw err;
  }
  return {
    server,
    reporter,
    publisher,
    close: async () => {
      await server.close();
      await reporter?.stop();
      await publisher?.close();
    },
  };
}

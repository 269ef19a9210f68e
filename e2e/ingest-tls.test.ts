/** The ingest API over TLS (optional in the config): a client trusting the CA pushes; a plaintext client cannot. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { encodeKeys } from "../src/ingest/ingest-batch";
import { kvIngestClient } from "../src/ingest/ingest-proto";
import { chainOf } from "../src/state/cache-index.contract";
import { tokenFor, withIngestTokens } from "./support/ingest-client";
import { startTestRouter, testConfig } from "./support/router-fixture";

type Client = { Push(req: object, md: Metadata, cb: (e: ServiceError | null, r?: { status: string }) => void): void; close(): void };

function selfSigned(): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
  return { dir, cert, key };
}

describe("ingest over TLS", () => {
  it("accepts pushes from a client that trusts the certificate, and not over plaintext", async () => {
    const tls = selfSigned();
    const base = testConfig();
    const r = await startTestRouter(
      testConfig({
        workers: withIngestTokens(base.workers),
        ingest: { listen: "127.0.0.1:0", tls: { cert: tls.cert, key: tls.key } },
      }),
    );
    const KvIngest = kvIngestClient();
    const push = (client: Client) =>
      new Promise<string>((resolve) => {
        const md = new Metadata();
        md.set("authorization", `Bearer ${tokenFor("w1")}`);
        client.Push({ worker_id: "w1", model: "qwen3", epoch: "e1", seq: "1", block_size: 16, events: [{ stored: { keys: encodeKeys(chainOf(2, "tls")) } }] }, md, (e, reply) =>
          resolve(e ? `error ${e.code}` : reply!.status),
        );
      });
    const address = `localhost:${r.service.ingest!.server.port}`;
    try {
      const secure = new KvIngest(address, credentials.createSsl(readFileSync(tls.cert))) as unknown as Client;
      expect(await push(secure)).toBe("APPLIED");
      secure.close();
      const plain = new KvIngest(address, credentials.createInsecure()) as unknown as Client;
      expect(await push(plain)).toMatch(/^error (14|13)$/); // UNAVAILABLE (handshake fails)
      plain.close();
      expect(Object.fromEntries(await r.service.index.lookup(chainOf(2, "tls"), ["w1"]))).toEqual({ w1: 2 });
    } finally {
      await r.stop();
    }
  });
});

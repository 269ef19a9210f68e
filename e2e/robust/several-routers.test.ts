/**
 * Three router processes sharing one Redis behind one client load (e2e/robust/several-routers-run.ts):
 * conversations stick to their replica although each follow-up is decided by another router, and
 * the replicas' load stays balanced.
 */
import { expect, it } from "vitest";
import { describeSeveral, runSeveralRouters, SHORT_SEVERAL } from "./several-routers-run";

it("three routers on one Redis keep conversations on their replica and the replicas balanced", { timeout: 180_000 }, async () => {
  const r = await runSeveralRouters(SHORT_SEVERAL, "vitest e2e/robust/several-routers.test.ts");
  console.log(describeSeveral(r));
  expect(r.failed).toBe(0);
  expect(r.followUps).toBeGreaterThan(200);
  expect(r.stickyShare).toBeGreaterThanOrEqual(0.8);
  expect(r.followUpHitShare).toBeGreaterThanOrEqual(0.8);
  expect(r.balanceMaxOverMean).toBeLessThanOrEqual(1.5);
  expect(r.balanceMinOverMean).toBeGreaterThanOrEqual(0.5);
});

import { sql } from "kysely";
import type { Db } from "../metadata/database.js";

type Req = { url?: string };
type Res = { writeHead(status: number, headers: Record<string, string>): unknown; end(body: string): unknown };

/** GET /healthz: 200 when the metadata store answers, 503 otherwise. For load balancers and orchestrators. */
export async function handleHealth(db: Db, req: Req, res: Res): Promise<boolean> {
  if (req.url !== "/healthz") return false;
  let status = 200;
  let body: Record<string, string> = { status: "ok" };
  try {
    await sql`select 1`.execute(db);
  } catch {
    status = 503;
    body = { status: "unavailable", reason: "metadata store unreachable" };
  }
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
  return true;
}

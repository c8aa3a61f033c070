import { sql } from "kysely";
import { DriveError, invalid } from "../errors.js";
import type { Db } from "../metadata/database.js";
import type { User } from "../metadata/schema.js";
import { mintToken, parseToken, secretMatches } from "./tokens.js";

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface Caller {
  user: User;
  /** The caller's home namespace. */
  namespaceId: number;
}

/** Creates a user and their home namespace; returns the token, shown once. */
export async function createUser(db: Db, name: string, admin: boolean): Promise<{ user: User; token: string }> {
  // Quoted short: the name is not checked yet, and an answer never echoes unbounded input.
  if (!NAME.test(name)) throw invalid(`user name ${JSON.stringify(name.slice(0, 64))}${name.length > 64 ? "…" : ""} must be 1-64 of [a-z0-9._-], starting with a letter or digit`);
  const minted = mintToken();
  return db.transaction().execute(async (tx) => {
    const user = await tx
      .insertInto("users")
      .values({ name, token_id: minted.tokenId, token_hash: minted.tokenHash, admin })
      .onConflict((oc) => oc.column("name").doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!user) throw new DriveError("already_exists", `user ${name} already exists`);
    await tx.insertInto("namespaces").values({ kind: "home", owner_id: user.id }).execute();
    return { user, token: minted.token };
  });
}

/** The caller a bearer token belongs to, or null. */
export async function authenticate(db: Db, token: string): Promise<Caller | null> {
  const parsed = parseToken(token);
  if (!parsed) return null;
  const row = await db
    .selectFrom("users")
    .innerJoin("namespaces", (j) => j.onRef("namespaces.owner_id", "=", "users.id").on("namespaces.kind", "=", "home"))
    .selectAll("users")
    .select("namespaces.id as namespace_id")
    .where("users.token_id", "=", parsed.tokenId)
    .executeTakeFirst();
  if (!row || !secretMatches(parsed.secret, row.token_hash)) return null;
  const { namespace_id, ...user } = row;
  return { user, namespaceId: namespace_id };
}

/**
 * Creates the first admin when there are no users at all, and hands the
 * token to `save` before the row commits: a crash in between leaves no users,
 * so the next start tries again instead of losing the only admin token.
 * Instances sharing a database may start together; the advisory lock lets
 * one of them win. Returns whether an admin was created.
 */
export async function bootstrapAdmin(db: Db, save: (token: string) => Promise<void>): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext('drive.bootstrap-admin'))`.execute(tx);
    const any = await tx.selectFrom("users").select("id").limit(1).executeTakeFirst();
    if (any) return false;
    const minted = mintToken();
    const user = await tx
      .insertInto("users")
      .values({ name: "admin", token_id: minted.tokenId, token_hash: minted.tokenHash, admin: true })
      .returning("id")
      .executeTakeFirstOrThrow();
    await tx.insertInto("namespaces").values({ kind: "home", owner_id: user.id }).execute();
    await save(minted.token);
    return true;
  });
}

import type { Migration } from "kysely";
import * as initial from "./0001-initial.js";
import * as openUploadsByUser from "./0002-open-uploads-by-user.js";
import * as contentDefinedChunks from "./0003-content-defined-chunks.js";
import * as treesAndFeed from "./0004-trees-and-feed.js";
import * as deletedListing from "./0005-deleted-listing.js";

/**
 * Every migration, by name, in order. Listed explicitly rather than read
 * from the folder, so that the same list runs from sources and from dist/.
 * Never edit a migration that has shipped; add a new one.
 */
export const migrations: Record<string, Migration> = {
  "0001-initial": initial,
  "0002-open-uploads-by-user": openUploadsByUser,
  "0003-content-defined-chunks": contentDefinedChunks,
  "0004-trees-and-feed": treesAndFeed,
  "0005-deleted-listing": deletedListing,
};

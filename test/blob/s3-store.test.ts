import { describe, it } from "vitest";
import { s3Env, s3Missing, openTestS3Store, uniqueBucket } from "../support/s3-env.js";
import { describeBlobStore } from "./conformance.js";

if (s3Env) {
  const env = s3Env;
  describeBlobStore("s3 (Ceph RGW or DRIVE_TEST_S3_ENDPOINT)", async () => ({
    store: await openTestS3Store(env, uniqueBucket("conformance")),
    origin: "http://unused.invalid",
    close: async () => {},
  }));
} else {
  describe.skip(`BlobStore conformance: s3 — ${s3Missing}`, () => {
    it("runs the BlobStore contract against S3", () => {});
  });
}

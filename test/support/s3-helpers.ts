import { randomBytes } from "node:crypto";
import { Client } from "minio";
import { clientOptions, S3BlobStore } from "../../server/blob/s3/s3-store.js";

/*
 * S3 helpers for tests and benchmarks. They take the engine as an argument,
 * so that code run outside vitest (bench/) can use them; s3-env.ts gives
 * tests the engine of the run.
 */

/** An S3 engine the tests may use: the Ceph RGW that global-setup started, or one named in DRIVE_TEST_S3_*. */
export interface S3TestEnv {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /**
   * The name the engine takes virtual-host requests on (BUCKET.NAME), which
   * tests resolve to the endpoint's address themselves; null when unknown.
   */
  virtualHost: string | null;
}

/** A bucket name no other test uses; stores create their bucket on open. */
export function uniqueBucket(label: string): string {
  return `drive-${label}-${randomBytes(4).toString("hex")}`.toLowerCase().slice(0, 63);
}

/** `drive server` environment for S3 mode on the test engine. */
export function s3ServerEnv(env: S3TestEnv, bucket: string, publicEndpoint?: string): NodeJS.ProcessEnv {
  return {
    DRIVE_S3_ENDPOINT: env.endpoint,
    DRIVE_S3_BUCKET: bucket,
    DRIVE_S3_ACCESS_KEY: env.accessKey,
    DRIVE_S3_SECRET_KEY: env.secretKey,
    DRIVE_S3_REGION: env.region,
    ...(publicEndpoint ? { DRIVE_S3_PUBLIC_ENDPOINT: publicEndpoint } : {}),
  };
}

/** An S3BlobStore on the test engine, opened (its bucket created). */
export async function openTestS3Store(env: S3TestEnv, bucket: string): Promise<S3BlobStore> {
  const store = new S3BlobStore({ ...env, bucket, pathStyle: true, sse: false, publicEndpoint: null });
  await store.open();
  return store;
}

/** A plain minio-js client on the test engine, for tests that reach around drive (bit rot, listings). */
export function testS3Client(env: S3TestEnv): Client {
  return new Client(clientOptions(env.endpoint, { ...env, pathStyle: true }));
}

import { randomBytes } from "node:crypto";
import { Client } from "minio";
import { inject } from "vitest";
import { S3BlobStore } from "../../server/blob/s3/s3-store.js";

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

declare module "vitest" {
  export interface ProvidedContext {
    s3: S3TestEnv | null;
    /** Why there is no S3 engine, and how to get one; "" when there is. */
    s3Missing: string;
  }
}

/** The S3 engine for this run, or null when the S3 suites are skipped. */
export const s3Env: S3TestEnv | null = inject("s3");
export const s3Missing: string = inject("s3Missing");

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
  const url = new URL(env.endpoint);
  return new Client({
    endPoint: url.hostname,
    port: Number(url.port) || (url.protocol === "https:" ? 443 : 80),
    useSSL: url.protocol === "https:",
    accessKey: env.accessKey,
    secretKey: env.secretKey,
    region: env.region,
    pathStyle: true,
  });
}

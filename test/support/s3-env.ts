import { inject } from "vitest";
import type { S3TestEnv } from "./s3-helpers.js";

export * from "./s3-helpers.js";

declare module "vitest" {
  export interface ProvidedContext {
    s3: S3TestEnv | null;
    /** Why there is no S3 engine, and how to get one; "" when there is. */
    s3Missing: string;
  }
}

/** The S3 engine for this run (see global-setup.ts), or null when the S3 suites are skipped. */
export const s3Env: S3TestEnv | null = inject("s3");
export const s3Missing: string = inject("s3Missing");

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { rgwInstalled, startRgw } from "./ceph-rgw.js";
import type { S3TestEnv } from "./s3-helpers.js";

/** RGW takes Host: BUCKET.s3.drive.test as virtual-host style; tests resolve the name themselves. */
const VIRTUAL_HOST = "s3.drive.test";

const HOW_TO =
  "To run it: install Ceph (sudo apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl) " +
  "and run npm test again, or point DRIVE_TEST_S3_ENDPOINT, DRIVE_TEST_S3_ACCESS_KEY and DRIVE_TEST_S3_SECRET_KEY at an S3 store.";

/**
 * Compiles dist/ so end-to-end tests run the same binary users do, and
 * finds the S3 engine for the S3 suites: DRIVE_TEST_S3_* when set, else a
 * Ceph RGW started here on 127.0.0.1 when Ceph is installed. Without one
 * the S3 suites are skipped and the run says so; DRIVE_TEST_S3=required
 * (CI) turns that into a failure, DRIVE_TEST_S3=off skips them on purpose.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });

  const mode = process.env.DRIVE_TEST_S3 ?? "auto";
  let s3: S3TestEnv | null = null;
  let missing = "";
  let stop = async () => {};
  if (process.env.DRIVE_TEST_S3_ENDPOINT) {
    s3 = {
      endpoint: process.env.DRIVE_TEST_S3_ENDPOINT,
      accessKey: required("DRIVE_TEST_S3_ACCESS_KEY"),
      secretKey: required("DRIVE_TEST_S3_SECRET_KEY"),
      region: process.env.DRIVE_TEST_S3_REGION ?? "us-east-1",
      virtualHost: process.env.DRIVE_TEST_S3_VIRTUAL_HOST ?? null,
    };
  } else if (mode === "off") {
    missing = "DRIVE_TEST_S3=off";
  } else if (!rgwInstalled()) {
    missing = "Ceph RGW is not installed";
  } else {
    const started = Date.now();
    try {
      const rgw = await startRgw({ dnsName: VIRTUAL_HOST });
      stop = () => rgw.stop();
      s3 = { endpoint: rgw.endpoint, accessKey: rgw.accessKey, secretKey: rgw.secretKey, region: rgw.region, virtualHost: VIRTUAL_HOST };
      console.log(`S3 suites run on Ceph RGW at ${rgw.endpoint} (started in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      // Ceph is there but would not start: the rest of the suite still runs.
      missing = `Ceph RGW is installed but did not start (${(err as Error).message.split("\n")[0]})`;
    }
  }
  if (!s3) {
    if (mode === "required") throw new Error(`DRIVE_TEST_S3=required, but there is no S3 engine: ${missing}. ${HOW_TO}`);
    missing = `S3 SUITE SKIPPED: ${missing}. ${HOW_TO}`;
    console.log(`\n${missing}\n`);
  }
  project.provide("s3", s3);
  project.provide("s3Missing", missing);
  return async () => {
    await stop();
    // The notice again at the end, where it is seen.
    if (missing) console.log(`\n${missing}\n`);
  };
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set with DRIVE_TEST_S3_ENDPOINT`);
  return value;
}

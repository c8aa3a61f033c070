import type { ServiceImpl } from "@connectrpc/connect";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { createUser } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { DriveError } from "../errors.js";
import { callerOf } from "./caller.js";

export function userService(deps: Deps): ServiceImpl<typeof UserService> {
  return {
    async whoAmI(_req, ctx) {
      const { user } = callerOf(ctx);
      return { name: user.name, admin: user.admin };
    },
    async createUser(req, ctx) {
      if (!callerOf(ctx).user.admin) throw new DriveError("permission_denied", "only an admin can create users");
      const { user, token } = await createUser(deps.db, req.name, req.admin);
      deps.log.info("user created", { name: user.name, admin: user.admin });
      return { name: user.name, token };
    },
  };
}

// PostGraphile 5 as the benchmark runs it: the Amber preset, bureau's public schema, no
// explain, the port from PORT. bench/run.py starts it with Node 22 from the npm registry.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { makePgSmartTagsFromFilePlugin } from "postgraphile/utils";

export default {
  extends: [PostGraphileAmberPreset],
  plugins: [makePgSmartTagsFromFilePlugin(new URL("./postgraphile.tags.json5", import.meta.url).pathname)],
  pgServices: [makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] })],
  grafserv: { port: Number(process.env.PORT), host: "127.0.0.1", graphiql: false },
  grafast: { explain: false },
};

/**
 * The AWS CLI from Debian's packages (`/usr/bin/aws`, botocore underneath, installed by
 * scripts/install-test-tools.sh) against Cairn's DynamoDB API with `--endpoint-url`, on a SQLite
 * file and on PostgreSQL: create-table, put-item, get-item, update-item, query, scan, delete-table,
 * as the README shows them. botocore checks each answer's CRC32.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeEach, serverForTests, storages } from "../targets.js";

const TOKEN = "dynamodb-awscli-token";
const AWS = "/usr/bin/aws";
const available = existsSync(AWS);
if (!available && process.env.CI) {
  throw new Error(`${AWS} is missing: scripts/install-test-tools.sh installs Debian's awscli`);
}
const run = promisify(execFile);

if (!available) {
  describe("the AWS CLI", () => {
    it.skip(`skipped: ${AWS} is not installed (scripts/install-test-tools.sh installs it as root)`, () => {});
  });
}

describeEach(available ? storages : [], "the AWS CLI", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const aws = async (...args: string[]) => {
    const { stdout } = await run(
      AWS,
      ["dynamodb", ...args, "--endpoint-url", server().url, "--output", "json"],
      {
        env: {
          PATH: process.env.PATH,
          HOME: "/nonexistent",
          AWS_ACCESS_KEY_ID: "admin",
          AWS_SECRET_ACCESS_KEY: TOKEN,
          AWS_DEFAULT_REGION: "us-east-1",
          AWS_CONFIG_FILE: "/dev/null",
          AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
          AWS_PAGER: "",
        },
      },
    );
    return stdout.trim() === "" ? undefined : JSON.parse(stdout);
  };

  it("creates a table, writes, reads, updates, queries, scans and deletes it", {
    timeout: 60_000,
  }, async () => {
    const created = await aws(
      "create-table",
      "--table-name",
      "Music",
      "--attribute-definitions",
      "AttributeName=Artist,AttributeType=S",
      "AttributeName=SongTitle,AttributeType=S",
      "--key-schema",
      "AttributeName=Artist,KeyType=HASH",
      "AttributeName=SongTitle,KeyType=RANGE",
      "--billing-mode",
      "PAY_PER_REQUEST",
    );
    expect(created.TableDescription).toMatchObject({ TableName: "Music", TableStatus: "ACTIVE" });

    for (const [title, year] of [
      ["Call Me Today", "2019"],
      ["Happy Day", "2020"],
      ["Sunny Days", "2021"],
    ]) {
      await aws(
        "put-item",
        "--table-name",
        "Music",
        "--item",
        JSON.stringify({
          Artist: { S: "No One You Know" },
          SongTitle: { S: title },
          Year: { N: year },
        }),
      );
    }
    const got = await aws(
      "get-item",
      "--table-name",
      "Music",
      "--key",
      JSON.stringify({ Artist: { S: "No One You Know" }, SongTitle: { S: "Happy Day" } }),
    );
    expect(got).toEqual({
      Item: {
        Artist: { S: "No One You Know" },
        SongTitle: { S: "Happy Day" },
        Year: { N: "2020" },
      },
    });

    const updated = await aws(
      "update-item",
      "--table-name",
      "Music",
      "--key",
      JSON.stringify({ Artist: { S: "No One You Know" }, SongTitle: { S: "Happy Day" } }),
      "--update-expression",
      "SET AlbumTitle = :t ADD Plays :one",
      "--expression-attribute-values",
      JSON.stringify({ ":t": { S: "Updated Album" }, ":one": { N: "1" } }),
      "--return-values",
      "ALL_NEW",
    );
    expect(updated.Attributes).toEqual({
      Artist: { S: "No One You Know" },
      SongTitle: { S: "Happy Day" },
      Year: { N: "2020" },
      AlbumTitle: { S: "Updated Album" },
      Plays: { N: "1" },
    });

    const queried = await aws(
      "query",
      "--table-name",
      "Music",
      "--key-condition-expression",
      "Artist = :a AND begins_with(SongTitle, :p)",
      "--expression-attribute-values",
      JSON.stringify({ ":a": { S: "No One You Know" }, ":p": { S: "S" } }),
    );
    expect(queried.Items.map((i: { SongTitle: { S: string } }) => i.SongTitle.S)).toEqual([
      "Sunny Days",
    ]);

    const scanned = await aws(
      "scan",
      "--table-name",
      "Music",
      "--filter-expression",
      "#y >= :y",
      "--expression-attribute-names",
      '{"#y":"Year"}',
      "--expression-attribute-values",
      '{":y":{"N":"2020"}}',
    );
    expect(scanned.Count).toBe(2);
    expect(scanned.ScannedCount).toBe(3);

    const failed = await aws(
      "get-item",
      "--table-name",
      "Nope",
      "--key",
      '{"Artist":{"S":"x"}}',
    ).catch((e: { stderr: string }) => e.stderr);
    expect(failed).toMatch(/ResourceNotFoundException/);

    const deleted = await aws("delete-table", "--table-name", "Music");
    expect(deleted.TableDescription.TableName).toBe("Music");
    expect((await aws("list-tables")).TableNames).toEqual([]);
  });
});

//! Public AWS prices (us-east-1, on-demand, no free tier), the one table `nphooks bill`
//! reads. Checked 2026-11-27 against the pages named with each price; update the date
//! with the numbers.

/// When the prices below were checked.
pub const CHECKED: &str = "2026-11-27";

/// One price: what it is for, in dollars per `unit`, and where it is published.
#[derive(Debug, Clone, Copy)]
pub struct Price {
    pub name: &'static str,
    pub dollars: f64,
    pub unit: &'static str,
    pub source: &'static str,
}

/// API Gateway HTTP API: first 300 million requests a month, metered per 512 KB.
pub const HTTP_API_REQUEST: Price = Price {
    name: "API Gateway HTTP API",
    dollars: 1.00 / 1e6,
    unit: "request (512 KB)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
};

/// Lambda requests, any architecture.
pub const LAMBDA_REQUEST: Price = Price {
    name: "Lambda requests",
    dollars: 0.20 / 1e6,
    unit: "invocation",
    source: "https://aws.amazon.com/lambda/pricing/",
};

/// Lambda duration on arm64, first 7.5 billion GB-s a month, billed per 1 ms.
pub const LAMBDA_ARM_GB_SECOND: Price = Price {
    name: "Lambda duration (arm64)",
    dollars: 0.000_013_333_4,
    unit: "GB-second",
    source: "https://aws.amazon.com/lambda/pricing/",
};

/// SQS standard queues, first 100 billion requests a month; each 64 KB chunk of a
/// request's payload is billed as one request.
pub const SQS_REQUEST: Price = Price {
    name: "SQS (standard)",
    dollars: 0.40 / 1e6,
    unit: "request (64 KB)",
    source: "https://aws.amazon.com/sqs/pricing/",
};

/// DynamoDB on-demand writes, after the 50 % cut of 1 November 2024 (was $1.25).
pub const DYNAMODB_WRITE_UNIT: Price = Price {
    name: "DynamoDB on-demand writes",
    dollars: 0.625 / 1e6,
    unit: "write request unit (1 KB)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};

/// DynamoDB on-demand reads, after the same cut (was $0.25).
pub const DYNAMODB_READ_UNIT: Price = Price {
    name: "DynamoDB on-demand reads",
    dollars: 0.125 / 1e6,
    unit: "read request unit (4 KB)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};

/// CloudWatch Logs ingestion, standard log class.
pub const LOGS_INGESTED_GB: Price = Price {
    name: "CloudWatch Logs ingestion",
    dollars: 0.50,
    unit: "GB",
    source: "https://aws.amazon.com/cloudwatch/pricing/",
};

/// Secrets Manager: each secret, each month (five: one per function).
pub const SECRET_MONTH: Price = Price {
    name: "Secrets Manager secret",
    dollars: 0.40,
    unit: "secret-month",
    source: "https://aws.amazon.com/secrets-manager/pricing/",
};

/// Secrets Manager API calls (one `GetSecretValue` per cold start).
pub const SECRET_CALL: Price = Price {
    name: "Secrets Manager calls",
    dollars: 0.05 / 10_000.0,
    unit: "API call",
    source: "https://aws.amazon.com/secrets-manager/pricing/",
};

/// Every price above, for the printed table.
pub const ALL: [Price; 9] = [
    HTTP_API_REQUEST,
    LAMBDA_REQUEST,
    LAMBDA_ARM_GB_SECOND,
    SQS_REQUEST,
    DYNAMODB_WRITE_UNIT,
    DYNAMODB_READ_UNIT,
    LOGS_INGESTED_GB,
    SECRET_MONTH,
    SECRET_CALL,
];

"""Business records for the held-out `retrieved_*` family: six domains, each a record template.

Written apart from the first golden family (other domains, other sentence templates, no shared
names or pools) so that defaults tuned on the dev split meet text they have not seen. A record is
a title line plus one sentence per field; every field has two phrasings, so a reworded copy of a
record states the same facts in other words (a near-duplicate that is not a synonym swap).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    key: str
    question: str                 # {e}: the record's entity
    phrasings: tuple[str, str]    # {v}: the value
    values: tuple[str, ...]       # answers are drawn from here; other records get the rest


@dataclass(frozen=True)
class Domain:
    name: str
    title: tuple[str, ...]        # {e}: title lines; a record picks one
    entities: tuple[str, ...]
    fields: tuple[Field, ...]
    boilerplate: tuple[str, ...]  # true of every record, states no field value
    superseded: str               # title of an older version of the same record: {e}


def F(key, question, a, b, values):
    return Field(key, question, (a, b), tuple(values))


DOMAINS = (
    Domain("offer", ("Offer of employment for {e}.", "Employment offer letter addressed to {e}."),
           ("Priya Namboodiri", "Tobias Wrenfield", "Aiko Brandvold", "Malik Osei-Tutu", "Carmen Iturbe",
            "Declan Fairweather", "Zofia Kaminska", "Reuben Ashdown"),
           (F("salary", "What starting salary is offered to {e}?", "The starting salary is {v} a year, paid monthly.",
              "You will be paid a gross annual salary of {v}.", ["$64,500", "$71,200", "$58,900", "$83,750", "$67,300"]),
            F("probation", "How long is the probation period in the offer to {e}?",
              "The first {v} of employment are a probation period.",
              "A probationary period of {v} applies from the start date.", ["12 weeks", "16 weeks", "26 weeks", "20 weeks"]),
            F("start", "On what date does {e} start work?", "Your first working day will be {v}.",
              "Employment begins on {v}.", ["3 March 2025", "14 April 2025", "2 June 2025", "8 September 2025"]),
            F("manager", "Who will {e} report to?", "You will report to {v}, head of the team.",
              "Your line manager will be {v}.", ["Ingrid Solheim", "Marcus Tellwright", "Yusra Bakhtiar", "Felix Ormond"]),
            F("leave", "How many days of paid leave does the offer to {e} include?",
              "You are entitled to {v} of paid leave each year, plus public holidays.",
              "Annual paid leave is {v}, not counting public holidays.", ["23 days", "27 days", "21 days", "30 days"])),
           ("This offer is conditional on satisfactory references.", "Please sign and return one copy of this letter.",
            "The company pension scheme is described in the staff handbook.", "Hours of work are set out in the handbook."),
           "Earlier offer to {e}, withdrawn and replaced by a revised offer."),
    Domain("policy", ("Insurance schedule for {e}.", "Policy schedule, commercial cover: {e}."),
           ("Dunmore Bakeries Ltd", "Polperro Dental Group", "Lyle & Haskett Printers", "Wrenmoor Veterinary",
            "Castleford Tile Works", "Ashgrove Nurseries", "Bramwell Courier Co", "Fennick Opticians"),
           (F("deductible", "What is the deductible per claim on the policy of {e}?",
              "A deductible of {v} applies to each claim.", "Each claim is subject to an excess of {v}.",
              ["$1,250", "$2,500", "$750", "$4,000", "$1,800"]),
            F("limit", "What is the limit of indemnity for {e}?", "The limit of indemnity is {v} in any one period.",
              "Cover is limited to {v} for all claims in the period.", ["$2 million", "$5 million", "$1.5 million", "$3 million"]),
            F("number", "What is the policy number for {e}?", "Policy number: {v}.", "Quote reference {v} on every claim.",
              ["PX-48213", "PX-51907", "PX-36640", "PX-72015", "PX-29458"]),
            F("insurer", "Which insurer underwrites the cover for {e}?", "The cover is underwritten by {v}.",
              "Your insurer is {v}.", ["Harrowgate Mutual", "Estuary General", "Kingsbridge Assurance", "Pennant Re"]),
            F("renewal", "When is the cover of {e} due for renewal?", "The policy renews on {v}.",
              "Renewal date: {v}.", ["1 July 2025", "15 October 2025", "31 January 2026", "1 May 2025"])),
           ("Read this schedule with the policy wording.", "Claims must be notified as soon as reasonably possible.",
            "Premiums are payable in advance.", "Cover applies only at the premises named in the schedule."),
           "Superseded schedule (2023) for {e}, replaced at renewal."),
    Domain("saas", ("Order form: {e}.", "Subscription order form for customer {e}."),
           ("Tolland Water Board", "Greyfriars Academy Trust", "Merriman Outdoor", "Quayside Hotels",
            "Holbeck Engineering", "Larkspur Pharmacy", "Saltmarsh Logistics", "Vantage Rowing Club"),
           (F("seats", "How many user seats does {e} subscribe to?", "The subscription covers {v} named users.",
              "Licensed users: {v}.", ["180", "240", "65", "410", "95"]),
            F("fee", "What is the annual subscription fee for {e}?", "The annual fee is {v}, invoiced in advance.",
              "{v} is payable each year of the term.", ["$38,400", "$52,800", "$12,950", "$96,000", "$27,600"]),
            F("term", "How long is the initial subscription term for {e}?", "The initial term is {v}.",
              "This order runs for an initial period of {v}.", ["24 months", "36 months", "18 months", "48 months"]),
            F("uptime", "What uptime does the service level promise {e}?", "The service level commitment is {v} uptime.",
              "Monthly availability of {v} is guaranteed.", ["99.9%", "99.5%", "99.95%", "99.8%"]),
            F("region", "In which region is the data of {e} hosted?", "Customer data is hosted in the {v} region.",
              "All data stays in the {v} hosting region.", ["Frankfurt", "Dublin", "Montreal", "Sydney"])),
           ("The master subscription agreement governs this order.", "Prices exclude sales tax.",
            "Support is available on business days.", "Usage above the licensed amount is billed quarterly."),
           "Draft order form for {e} (not signed, superseded by the signed order)."),
    Domain("loan", ("Loan agreement summary: {e}.", "Key facts of the business loan to {e}."),
           ("Harwick Joinery", "Selby Fresh Produce", "Oakhurst Physiotherapy", "Morrow & Daughters Builders",
            "Kettlewell Print Studio", "Pinecrest Kennels", "Alder Row Cafe", "Stonebridge Haulage"),
           (F("rate", "What interest rate does {e} pay on its loan?", "Interest is charged at {v} a year, fixed.",
              "The fixed annual interest rate is {v}.", ["6.35%", "7.10%", "5.85%", "8.20%", "6.90%"]),
            F("months", "Over how many months is the loan to {e} repaid?", "The loan is repaid over {v}.",
              "Repayment term: {v}.", ["84 months", "60 months", "120 months", "48 months"]),
            F("payment", "What is the monthly repayment on the loan to {e}?", "Each monthly instalment is {v}.",
              "You will repay {v} every month.", ["$1,912", "$2,645", "$987", "$3,318", "$1,476"]),
            F("lender", "Which lender made the loan to {e}?", "The lender is {v}.", "This loan is provided by {v}.",
              ["Harbourside Credit Union", "Northgate Commercial Bank", "Fairlea Finance", "Tideway Capital"]),
            F("security", "What secures the loan to {e}?", "The loan is secured on {v}.",
              "As security the borrower pledges {v}.", ["the company's workshop", "two delivery vans",
                                                         "the owner's warehouse lease", "a CNC milling machine"])),
           ("Early repayment is allowed with one month's notice.", "Missed payments may affect the credit rating.",
            "The borrower must keep the secured assets insured.", "Statements are sent every quarter."),
           "Loan offer to {e} from 2022, superseded when the loan was refinanced."),
    Domain("incident", ("Incident report: {e}.", "Post-incident review for {e}."),
           ("the ticketing site of Marrowgate Transit", "the payroll service of Ennis County",
            "the booking app of Culver Leisure Centres", "the card terminals of Brightwater Markets",
            "the patient portal of Kelso Health", "the parcel tracker of Swiftline Couriers",
            "the e-mail gateway of Dalby College", "the meter readings of Orwell Energy"),
           (F("duration", "How long did the outage of {e} last?", "Service was unavailable for {v} in total.",
              "The outage lasted {v} from first alert to recovery.", ["47 minutes", "2 hours 10 minutes", "95 minutes",
                                                                       "3 hours 5 minutes"]),
            F("cause", "What was the root cause of the outage of {e}?", "The root cause was {v}.",
              "Investigation traced the failure to {v}.", ["an expired TLS certificate", "a full database disk",
                                                           "a faulty network switch", "a bad configuration push"]),
            F("lead", "Who led the response to the outage of {e}?", "{v} was the incident commander.",
              "The response was led by {v}.", ["Oksana Petrenko", "Jamal Whitcombe", "Eleri Vaughan", "Tobias Kroll"]),
            F("affected", "How many customers were affected by the outage of {e}?", "About {v} customers were affected.",
              "The failure affected roughly {v} customers.", ["3,200", "18,500", "740", "9,100"]),
            F("ticket", "Which ticket tracks the outage of {e}?", "It is tracked as ticket {v}.",
              "Follow-up work is logged under {v}.", ["INC-2291", "INC-3047", "INC-1186", "INC-4410", "INC-2758"])),
           ("Action items are reviewed at the weekly operations meeting.", "Timestamps are in local time.",
            "This review is blameless.", "Monitoring has been extended to cover the affected components."),
           "Preliminary report on {e}, since corrected by the final review."),
    Domain("permit", ("Building permit for {e}.", "Planning and building consent: {e}."),
           ("14 Alder Row, Kilbride", "2 Ferry Lane, Wexcombe", "9 Mill Street, Arlow", "31 Quarry Hill, Dunstan",
            "5 Heron Close, Baysford", "77 Tanners Way, Lowick", "18 Orchard Rise, Pellham", "4 Signal Road, Tarrant"),
           (F("permit", "What is the permit number for {e}?", "Permit number {v} was issued for this work.",
              "The consent reference is {v}.", ["BP-2024-0317", "BP-2024-1152", "BP-2025-0044", "BP-2024-0893"]),
            F("height", "What is the maximum building height allowed at {e}?",
              "The building may not exceed {v} in height.", "Maximum height: {v} above ground level.",
              ["9.5 metres", "7.2 metres", "11 metres", "8.4 metres"]),
            F("contractor", "Which contractor is named on the permit for {e}?", "The named contractor is {v}.",
              "Works are to be carried out by {v}.", ["Gable & Sons Construction", "Ridgeway Builders",
                                                      "Coldharbour Contracting", "Marten Homes"]),
            F("inspection", "When is the foundation inspection at {e}?", "The foundation inspection is booked for {v}.",
              "An inspector will check the foundations on {v}.", ["12 May 2025", "3 June 2025", "21 July 2025",
                                                                  "9 April 2025"]),
            F("fee", "What permit fee was paid for {e}?", "A permit fee of {v} has been paid.",
              "Fee received: {v}.", ["$1,180", "$2,240", "$865", "$1,640"])),
           ("Work must start within two years of the permit date.", "Any change to the plans needs a new consent.",
            "Neighbours have been notified.", "Site hours are 8am to 6pm on weekdays."),
           "Refused application for {e} (2023), replaced by the current permit."),
)
